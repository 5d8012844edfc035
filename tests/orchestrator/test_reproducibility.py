"""Reproducible rows (issue 12, item 5): each repeat gets a seed derived from the sweep's seed,
projects that take ``seed`` (or read ``$ORCHESTRATOR_SEED``) receive it, and rerunning one
repeat with its row's seed gives back its numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adapters import adapt_project
from adapters.runner import call_entry
from core.config import validate_sweep
from core.identity import experiment_seed
from core.plan import SweepPlan
from core.project import ProjectSpec
from orchestrator.api import load_results
from tests.conftest import FIXTURES, cli

SEEDED = FIXTURES / "projects" / "seeded"


def _sweep(folder: Path, seed: int = 7, name: str = "seeded") -> Path:
    sweep = {
        "name": name,
        "projects": [
            {"name": "fn", "path": str(SEEDED), "entry": "seeded:run"},
            {"name": "cls", "path": str(SEEDED), "entry": "seeded:Noisy"},
            {"name": "cmd", "path": str(SEEDED), "entry": "{python} {project_dir}/noisy_tool.py {x}"},
        ],
        "parameters": {"x": [0.0, 10.0]},
        "repeats": 3,
        "seed": seed,
        "adaptive_sampling": False,
    }
    path = folder / f"{name}-{seed}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def test_the_seed_is_derived_from_the_sweep_seed_per_repeat(tmp_path: Path) -> None:
    config = validate_sweep(yaml.safe_load(_sweep(tmp_path, seed=7).read_text()), source="<t>")
    plan = SweepPlan.build(config)
    again = SweepPlan.build(config)
    seeds = [plan.experiment(i).seed for i in range(plan.space.size * plan.stride)]
    assert seeds == [again.experiment(i).seed for i in range(len(seeds))], "deterministic"
    assert all(isinstance(s, int) and 0 <= s < 2**31 for s in seeds)
    assert len(set(seeds)) == len(seeds), "every repeat of every point and project has its own"
    other = SweepPlan.build(config.model_copy(update={"seed": 8}))
    assert not set(seeds) & {other.experiment(i).seed for i in range(len(seeds))}, (
        "a new sweep seed, new seeds"
    )
    assert experiment_seed(7, "fn", {"x": 0.1, "y": 2}, 1) == experiment_seed(7, "fn", {"y": 2, "x": 0.1}, 1)


def test_call_entry_passes_the_seed_only_where_declared() -> None:
    def takes(x, seed):
        return seed

    def ignores(x):
        return "no seed"

    def mapping(params: dict, seed: int):
        return params, seed

    assert call_entry(takes, {"x": 1}, seed=5) == 5
    assert call_entry(ignores, {"x": 1}, seed=5) == "no seed"
    assert call_entry(takes, {"x": 1, "seed": 99}, seed=5) == 99, "a swept or fixed seed wins"
    assert call_entry(mapping, {"x": 1}, seed=5) == ({"x": 1}, 5), "kept out of the mapping"


@pytest.mark.parametrize("isolation", ["inline", "subprocess"])
def test_rerunning_one_repeat_reproduces_its_numbers(isolation: str) -> None:
    spec = ProjectSpec(name="fn", path=str(SEEDED), entry="seeded:run", isolation=isolation)
    adapter = adapt_project(SEEDED, spec)
    first = adapter.execute_with_parameters({"x": 1.0}, seed=123)
    again = adapter.execute_with_parameters({"x": 1.0}, seed=123)
    other = adapter.execute_with_parameters({"x": 1.0}, seed=124)
    assert first.status == "completed", first.error_message
    assert first.metrics["seed_seen"] == 123
    assert first.metrics["y"] == again.metrics["y"] != other.metrics["y"]


def test_a_sweep_seeds_every_kind_of_project_and_reruns_identically(workdir: Path, redis_url: str) -> None:
    sweep = _sweep(workdir)
    for results in ("first", "second"):  # two fresh runs of the same sweep file
        args = ("--results-dir", results, "--state-dir", f"state-{results}")
        out = cli("run", str(sweep), "--workers", "2", *args, workdir=workdir)
        assert out.returncode == 0, out.stdout + out.stderr
    sweep_id = next(Path(workdir / "first").glob("sweep=*")).name.removeprefix("sweep=")
    a, b = load_results(sweep_id, workdir / "first"), load_results(sweep_id, workdir / "second")
    assert len(a) == 18 and (a["status"] == "completed").all(), a[["project_name", "error_message"]]
    assert a["seed"].notna().all() and a["reproducibility_hash"].str.len().eq(16).all()
    key = ["project_name", "param.x", "repeat"]
    a, b = a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True)
    assert a["metric.y"].tolist() == b["metric.y"].tolist(), "the same sweep gives the same numbers"
    assert a["seed"].tolist() == b["seed"].tolist()
    # each project saw its row's seed: as a keyword, through the constructor, or in $ORCHESTRATOR_SEED
    seen = a.dropna(subset=["metric.seed_seen"])
    assert len(seen) == 12 and (seen["metric.seed_seen"] == seen["seed"]).all()
    # repeats are independent draws: three different values per point and project
    assert (a.groupby(["project_name", "param.x"])["metric.y"].nunique() == 3).all()
    # rerunning one repeat by hand, with its row's seed, gives its numbers back
    for project, entry in (("fn", "seeded:run"), ("cls", "seeded:Noisy")):
        row = a[a["project_name"] == project].iloc[4]
        adapter = adapt_project(SEEDED, ProjectSpec(name=project, path=str(SEEDED), entry=entry))
        again = adapter.execute_with_parameters({"x": row["param.x"]}, seed=int(row["seed"]))
        assert again.metrics["y"] == row["metric.y"]
