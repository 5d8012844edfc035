"""Metric names are learned from real results: ``submit`` runs nothing, and an objective no result
produces pauses the sweep with a configuration alert that says the fix (real workers)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator import Orchestrator
from tests.conftest import FIXTURES, cli, executions, write_sweep

COUNTER = str(FIXTURES / "projects" / "counter")


def _sweep(objective: str, sleep: float) -> dict:
    return {
        "name": "learned",
        "projects": [{"name": "counter", "path": COUNTER, "entry": "counter:run"}],  # declares no metrics
        "parameters": {"x": {"kind": "int", "start": 0, "stop": 11}, "sleep": [sleep]},
        "objectives": [{"metric": objective, "goal": "minimize"}],
        "seed": 3,
        "optimizer": {"startup_points": 3},
    }


def test_submit_of_an_adaptive_sweep_runs_no_project_code_in_the_caller(
    workdir: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNTER_DIR", str(workdir / "counter"))  # a run in this process would log here
    (workdir / "counter").mkdir(exist_ok=True)
    with Orchestrator(redis_url, coordinate=False) as orch:
        execution = orch.submit(_sweep("y", sleep=3.0))  # no coordinator, no worker: nothing may run
        assert orch.status(execution.execution_id).state == "running"
    # the counter logs every run as it starts: a run in this process (to learn the metric names)
    # would leave a line; submit's time is measured by benchmarks, not asserted here
    assert not executions(workdir), "submit ran the project"


def test_an_objective_no_result_produces_pauses_the_sweep_with_the_fix(
    workdir: Path, redis_url: str, start_worker
) -> None:
    start_worker("obj", concurrency=2)
    with Orchestrator(redis_url, optimizer_interval=0.5, publish_window=2) as orch:
        sid = orch.submit(_sweep("loss", sleep=1.0)).execution_id
        deadline = time.monotonic() + 120
        while (status := orch.status(sid)).state == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
    assert status.state == "paused", (status.state, status.events, status.optimizer)
    reason = status.paused_reason or ""
    assert "objective 'loss' is in no result" in reason and "x_echo, y" in reason
    assert "objectives[0].metric" in reason, "names the field to fix"
    assert any(e["level"] == "alert" and e["message"] == reason for e in status.events)
    assert status.finished < 12, "paused before the whole sweep ran"


@pytest.mark.parametrize(
    ("extra", "field", "named"),
    [
        (
            {"objectives": [{"metric": "y_typo", "goal": "minimize"}]},
            "objectives[0].metric",
            "objective 'y_typo'",
        ),
        ({"constraints": {"metrics": ["x_echo >= 0", "y_typo < 4"]}}, "constraints.metrics[1]", "'y_typo'"),
    ],
)
def test_a_grid_sweep_with_a_metric_no_result_reports_alerts_and_run_exits_non_zero(
    extra: dict, field: str, named: str, workdir: Path, redis_url: str, start_worker
) -> None:
    """Issue 20: with ``adaptive_sampling: false`` the typo was silent (exit 0, no alert, the
    "best by" table gone). Now it is the adaptive sweeps' configuration alert, in every sweep."""
    start_worker("grid", concurrency=2)
    sweep = write_sweep(workdir, name="grid-typo", points=4, **extra)
    proc = cli("run", str(sweep), "--broker", redis_url, workdir=workdir)
    out = " ".join(proc.stdout.split())
    assert proc.returncode == 1, out + proc.stderr
    assert f"{named}" in out and "is in no result" in out, out
    assert "the results report: x_echo, y" in out and field in out, "names the field and the reported metrics"


def test_a_sweep_whose_results_are_all_reused_still_alerts(
    workdir: Path, redis_url: str, start_worker
) -> None:
    """Nothing runs (every experiment is reused from an earlier sweep), so no result arrives from
    a worker: the reused rows are what the check learns the metric names from."""
    start_worker("reuse", concurrency=2)
    good = write_sweep(workdir, name="grid-good", points=3, objectives=["y"])
    assert cli("run", str(good), "--broker", redis_url, workdir=workdir).returncode == 0
    typo = write_sweep(workdir, name="grid-reused", points=3, objectives=["yy"])
    proc = cli("run", str(typo), "--broker", redis_url, workdir=workdir)
    out = " ".join(proc.stdout.split())
    assert proc.returncode == 1 and "objective 'yy' is in no result" in out, out + proc.stderr
    assert sum(executions(workdir).values()) == 3, "the second sweep ran nothing: all reused"
