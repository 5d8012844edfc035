"""Pause, resume and cancel a running sweep from the Python API, as a user would from a shell."""

from __future__ import annotations

import time
from pathlib import Path

from orchestrator import Orchestrator
from tests.conftest import executions, spawn_cli, write_sweep
from tests.support.waiting import wait_until


def test_python_shell_submits_polls_and_reads_partial_results(
    workdir: Path, redis_url: str, start_worker
) -> None:
    start_worker("w1", concurrency=2)
    with Orchestrator(redis_url, lease_ttl=2, visibility_timeout=8) as orch:
        execution = orch.submit(write_sweep(workdir, points=16, sleep=0.25))
        wait_until(lambda: orch.status(execution.execution_id).counts["completed"] >= 4)
        status = orch.status(execution.execution_id)
        assert status.state == "running" and status.eta_seconds is not None
        wait_until(lambda: len(orch.results(execution.execution_id)) >= 2)  # partial rows while running
        partial = orch.results(execution.execution_id)
        assert 2 <= len(partial) < 16 and (partial["status"] == "completed").all()
        final = orch.wait(execution.execution_id, timeout=120)
    assert final.state == "completed" and final.counts["completed"] == 16
    assert final.counts["pending"] == final.counts["queued"] == final.counts["running"] == 0


def test_pause_stops_publishing_within_a_window_resume_continues_cancel_keeps_results(
    workdir: Path, redis_url: str, start_worker
) -> None:
    start_worker("w1", concurrency=1)
    window = 2  # 2 x one consumer
    with Orchestrator(redis_url, publish_window=window, lease_ttl=2, visibility_timeout=8) as orch:
        sid = orch.submit(write_sweep(workdir, points=40, sleep=0.2)).execution_id
        wait_until(lambda: sum(executions(workdir).values()) >= 3)
        assert orch.pause(sid)
        at_pause = sum(executions(workdir).values())
        time.sleep(3.0)  # ample time for 15 more runs if publishing went on
        after = sum(executions(workdir).values())
        assert after <= at_pause + window + 1, (at_pause, after)  # the published window (+ one running)
        time.sleep(1.0)
        assert sum(executions(workdir).values()) == after, "nothing new starts while paused"
        assert orch.status(sid).state == "paused"

        assert orch.resume(sid)
        wait_until(lambda: sum(executions(workdir).values()) >= after + 4)
        assert orch.cancel(sid)
        final = orch.wait(sid, timeout=60)
    assert final.state == "cancelled"
    frame = orch.results(sid)
    completed = frame[frame["status"] == "completed"]
    assert len(completed) == final.counts["completed"] >= after + 4
    assert final.counts["cancelled"] == 40 - len(completed) - final.counts["failed"]
    assert completed["experiment_id"].is_unique


def test_max_experiments_runs_that_many_then_completes(workdir: Path, redis_url: str, start_worker) -> None:
    # y = (x - 3)^2 over x = 0..59: with a run budget every run waits for the model's pick, so
    # 16 runs of 0.1 s find x = 3 (the 6-point startup design, then the model)
    start_worker("w1", concurrency=2)
    sweep = write_sweep(
        workdir,
        points=60,
        sleep=0.1,
        max_experiments=16,
        adaptive_sampling=True,
        objectives=[{"metric": "y", "goal": "minimize"}],
        seed=1,
    )
    with Orchestrator(redis_url, optimizer_interval=0.2) as orch:
        sid = orch.submit(sweep).execution_id
        final = orch.wait(sid, timeout=120)
        frame = orch.results(sid)
    assert final.state == "completed"
    # every execution is counted: the 16 and nothing else (validation never runs the project)
    assert sum(executions(workdir).values()) == 16 and final.counts["completed"] == 16 == len(frame)
    assert final.counts["cancelled"] == 44 and final.counts["pending"] == 0
    assert any("max_experiments (16) ran" in e["message"] for e in final.events), final.events
    assert frame["metric.y"].min() == 0.0, sorted(frame["param.x"])


def test_run_stops_following_a_paused_sweep_and_says_how_to_resume(
    workdir: Path, redis_url: str, start_worker
) -> None:

    from tests.conftest import cli

    start_worker("w1", concurrency=1)
    sweep = write_sweep(workdir, name="pausable", points=30, sleep=0.2)
    run = spawn_cli("run", str(sweep), "--broker", redis_url, workdir=workdir)
    deadline = time.monotonic() + 60
    while not executions(workdir) and time.monotonic() < deadline:
        time.sleep(0.1)
    sweep_id = next(Path("results").glob("sweep=*")).name.removeprefix("sweep=")
    assert cli("pause", sweep_id, "--broker", redis_url, workdir=workdir).returncode == 0
    out, _ = run.communicate(timeout=120)
    assert run.returncode == 1, out
    said = " ".join(out.split())  # the console wraps long lines
    assert "sweep paused: paused by user" in said and f"orchestrator resume {sweep_id}" in said, out
    assert sum(executions(workdir).values()) < 30, "it did not wait for the rest"
