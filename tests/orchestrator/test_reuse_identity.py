"""A result is reused only for the same work (issues 20 and 24), with real workers: the seed a run
receives and the project's entry are part of the experiment's identity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.errors import InputError
from core.identity import experiment_seed
from orchestrator import Orchestrator, load_results
from tests.conftest import FIXTURES, ROOT, cli

SEEDED = str(FIXTURES / "projects" / "seeded")
BELL = str(ROOT / "examples" / "projects" / "bell")


def _seeded(name: str, seed: int) -> dict[str, Any]:
    return {
        "name": name,
        "projects": [{"name": "fn", "path": SEEDED, "entry": "seeded:run"}],  # run(x, seed=None)
        "parameters": {"x": [0.0, 1.0, 2.0]},
        "seed": seed,
        "adaptive_sampling": False,
    }


def test_another_sweep_seed_runs_new_experiments_and_the_same_seed_reuses(
    workdir: Path, redis_url: str, start_worker
) -> None:
    start_worker("seeds", concurrency=2)
    with Orchestrator(redis_url) as orch:
        one = orch.run(_seeded("seed-one", 1), timeout=120)
        two = orch.run(_seeded("seed-two", 2), timeout=120)
        again = orch.run(_seeded("seed-one-again", 1), timeout=120)
    assert (one.state, one.counts["completed"]) == ("completed", 3), one.events
    assert (two.counts["completed"], two.counts["reused"]) == (3, 0), "seed 2 draws new numbers"
    assert (again.counts["completed"], again.counts["reused"]) == (0, 3), "seed 1 again reuses"
    frame = load_results(two.execution_id, workdir / "results").set_index("param.x")
    for x in (0.0, 1.0, 2.0):
        seed = experiment_seed(2, "fn", {"x": x}, 0)
        assert frame.loc[x, "seed"] == seed, "each row carries the seed its run received"
        assert frame.loc[x, "metric.seed_seen"] == seed
    reused = load_results(again.execution_id, workdir / "results").set_index("param.x")
    assert reused.loc[1.0, "seed"] == experiment_seed(1, "fn", {"x": 1.0}, 0)


def _bell(name: str, project: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "projects": [{"name": "bell", "path": BELL, **project}],
        "parameters": {"noise": [0.05], "shots": [400]},
        "adaptive_sampling": False,
    }


def test_a_result_of_other_work_on_the_same_folder_is_never_reused(
    workdir: Path, redis_url: str, start_worker
) -> None:
    """Issue 24's poisoning: a command on the bell folder that prints a made-up number, then the
    genuine ``bell:run`` with the same parameters. The old key (project, code, parameters,
    repeat, queue) was the same for both, and the genuine sweep reported the made-up 0.123."""
    start_worker("poison", concurrency=2)
    fake = {"entry": "echo P=0.123 {noise} {shots}", "command": {"regex": {"p_correlated": "P=([0-9.]+)"}}}
    with Orchestrator(redis_url) as orch:
        poisoned = orch.run(_bell("poison", fake), timeout=120)
        genuine = orch.run(_bell("genuine", {"entry": "bell:run"}), timeout=180)
    assert poisoned.counts["completed"] == 1, poisoned.events
    assert (genuine.counts["completed"], genuine.counts["reused"]) == (1, 0), "ran the genuine entry"
    value = load_results(genuine.execution_id, workdir / "results")["metric.p_correlated"].iloc[0]
    assert value != pytest.approx(0.123) and value > 0.8, value


def test_the_python_api_raises_for_a_sweep_the_results_do_not_hold(workdir: Path, redis_url: str) -> None:
    """``load_results`` and ``Orchestrator.results`` say what the CLI says, instead of an empty frame."""
    (workdir / "results" / "sweep=known-0123456789").mkdir(parents=True)
    with pytest.raises(InputError) as caught:
        load_results("bad-id", workdir / "results")
    message = str(caught.value)
    assert "no results for 'bad-id'" in message and "known-0123456789" in message
    assert caught.value.fix and "--results-dir" in caught.value.fix
    with pytest.raises(InputError, match="it holds no sweeps"):
        load_results("known-0123456789", workdir / "elsewhere")  # the right id, another folder
    with (
        Orchestrator(redis_url, coordinate=False, results_dir=str(workdir / "results")) as orch,
        pytest.raises(InputError) as api,
    ):
        orch.results("bad-id")
    assert str(api.value) == message, "one message for the same mistake"
    proc = cli("results", "bad-id", "--results-dir", str(workdir / "results"), workdir=workdir)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "".join(caught.value.message.split()) in "".join(proc.stderr.split()), proc.stderr
