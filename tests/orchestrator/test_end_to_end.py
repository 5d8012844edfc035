"""A sweep end to end: embedded (private Redis + local workers) and distributed (external Redis
plus a separately started worker) give the same results."""

from __future__ import annotations

from pathlib import Path

from orchestrator.api import load_results
from tests.conftest import cli, executions, write_sweep

CONTENT = ["experiment_id", "project_name", "status", "param.x", "metric.y", "reproducibility_hash", "seed"]


def _content(frame):
    return frame[CONTENT].sort_values("experiment_id").reset_index(drop=True)


def test_embedded_and_distributed_give_identical_results(workdir: Path, redis_url: str, start_worker) -> None:
    sweep = write_sweep(workdir, points=10)

    embedded = cli("run", str(sweep), "--workers", "2", "--results-dir", "embedded", workdir=workdir)
    assert embedded.returncode == 0, embedded.stdout + embedded.stderr
    assert "completed" in embedded.stdout

    start_worker("dist")
    distributed = cli(
        "run", str(sweep), "--broker", redis_url, "--results-dir", "distributed", workdir=workdir
    )
    assert distributed.returncode == 0, distributed.stdout + distributed.stderr

    sweep_id = next(Path("embedded").glob("sweep=*")).name.removeprefix("sweep=")
    a = load_results(sweep_id, "embedded")
    b = load_results(sweep_id, "distributed")
    assert len(a) == 10 and (a["status"] == "completed").all()
    assert _content(a).equals(_content(b))
    # every row can be reproduced: its hash (id, seed, Python and key packages) travels with the message
    assert (a["reproducibility_hash"].str.len() == 16).all() and a["reproducibility_hash"].is_unique
    assert a["seed"].notna().all() and a["seed"].is_unique  # the same seeds in both modes (CONTENT)
    assert sorted(a["metric.y"]) == sorted((x - 3.0) ** 2 for x in range(10))
    # every point ran once per mode
    assert set(executions(workdir).values()) == {2}


def test_rerun_reuses_completed_experiments(workdir: Path, redis_url: str, start_worker) -> None:
    start_worker()
    sweep = write_sweep(workdir, points=6)
    first = cli("run", str(sweep), "--broker", redis_url, workdir=workdir)
    assert first.returncode == 0, first.stdout + first.stderr
    second = cli("run", str(sweep), "--broker", redis_url, workdir=workdir)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "reused 6" in second.stdout.replace("│", " ").replace("  ", " ") or "reused" in second.stdout
    assert sum(executions(workdir).values()) == 6  # nothing ran twice
    sweep_id = next(Path("results").glob("sweep=*")).name.removeprefix("sweep=")
    frame = load_results(sweep_id)
    assert len(frame) == 6 and (frame["status"] == "completed").all()


def test_results_reused_from_another_sweep_cost_nothing_there(
    workdir: Path, redis_url: str, start_worker
) -> None:
    import json

    start_worker()
    first = cli("run", str(write_sweep(workdir, name="a", points=4)), "--broker", redis_url, workdir=workdir)
    assert first.returncode == 0, first.stdout + first.stderr
    second = cli("run", str(write_sweep(workdir, name="b", points=6)), "--broker", redis_url, workdir=workdir)
    assert second.returncode == 0, second.stdout + second.stderr
    assert sum(executions(workdir).values()) == 6, "the 4 shared points ran once"
    a_id, b_id = (next(Path("results").glob(f"sweep={n}-*")).name.removeprefix("sweep=") for n in "ab")
    frame = load_results(b_id)
    reused = frame[frame["param.x"] < 4]
    assert len(frame) == 6 and len(reused) == 4
    assert (reused["cost"] == 0.0).all(), "paid for by the sweep it ran in"
    assert {json.loads(e)["reused_from"] for e in reused["extra"]} == {a_id}
