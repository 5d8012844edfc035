"""Error classes through real workers: transient retried, poison given up, resource pauses,
deadline honoured."""

from __future__ import annotations

import time
from pathlib import Path

from orchestrator import Orchestrator
from tests.conftest import FIXTURES, executions

FLAKY = str(FIXTURES / "projects" / "flaky")


def _sweep(entry: str, points: int, **extra) -> dict:
    return {
        "name": entry.split(":")[1],
        "projects": [{"name": "flaky", "path": FLAKY, "entry": entry}],
        "parameters": {"x": {"kind": "int", "start": 0, "stop": points - 1}},
        "adaptive_sampling": False,
        **extra,
    }


def test_transient_errors_are_retried_with_backoff(workdir: Path, redis_url: str, start_worker) -> None:
    start_worker("w", concurrency=2)
    with Orchestrator(redis_url, retry_backoff=0.2, retry_backoff_max=1.0) as orch:
        sid = orch.submit(_sweep("flaky:transient", 3)).execution_id
        final = orch.wait(sid, timeout=120)
        frame = orch.results(sid)
    assert final.state == "completed" and final.counts["completed"] == 3
    assert (frame["status"] == "completed").all() and len(frame) == 3
    assert executions(workdir) == {"0": 3, "1": 3, "2": 3}  # two transient failures, then success


def test_an_experiment_that_kills_its_worker_is_given_up_after_max_attempts(
    workdir: Path, redis_url: str, start_worker
) -> None:
    start_worker("w", concurrency=2)
    with Orchestrator(redis_url, max_attempts=3) as orch:
        sid = orch.submit(_sweep("flaky:poison", 4)).execution_id
        final = orch.wait(sid, timeout=180)
        frame = orch.results(sid).set_index("param.x")
    assert final.state == "completed"
    assert (
        frame.loc[0, "status"] == "failed" and "gave up after 3 deliveries" in frame.loc[0, "error_message"]
    )
    assert executions(workdir)["0"] == 3, "three deliveries, then no more"
    assert (frame.loc[[1, 2, 3], "status"] == "completed").all(), "the rest of the sweep completes"


def test_a_resource_error_pauses_the_sweep_with_an_alert(workdir: Path, redis_url: str, start_worker) -> None:
    start_worker("w", concurrency=1)
    with Orchestrator(redis_url, publish_window=1) as orch:
        sid = orch.submit(_sweep("flaky:out_of_memory", 6)).execution_id
        deadline = time.monotonic() + 60
        while orch.status(sid).state != "paused" and time.monotonic() < deadline:
            time.sleep(0.1)
        status = orch.status(sid)
        assert status.state == "paused"
        assert any(e["level"] == "alert" and "cannot allocate" in e["message"] for e in status.events)
        time.sleep(2.0)
        ran = sum(executions(workdir).values())
        time.sleep(1.5)
        assert sum(executions(workdir).values()) == ran, "paused: nothing new starts"
        assert orch.cancel(sid)
        final = orch.wait(sid, timeout=60)
    assert final.state == "cancelled"
    assert "2" in executions(workdir)


def test_max_duration_stops_the_sweep(workdir: Path, redis_url: str, start_worker) -> None:
    start_worker("w", concurrency=1)
    sweep = {
        "name": "deadline",
        "projects": [{"name": "c", "path": str(FIXTURES / "projects" / "counter"), "entry": "counter:run"}],
        "parameters": {"x": {"kind": "int", "start": 0, "stop": 39}, "sleep": [0.2]},
        "adaptive_sampling": False,
        "max_duration": "2s",
    }
    with Orchestrator(redis_url, publish_window=2) as orch:
        sid = orch.submit(sweep).execution_id
        final = orch.wait(sid, timeout=60)
    assert final.state == "timed_out"
    assert 0 < final.counts["completed"] < 40
    assert final.counts["completed"] + final.counts["cancelled"] == 40
    assert any("max_duration" in e["message"] for e in final.events)
