"""The lazy range under faults: a 20,000-point sweep, of which the pending sets only ever hold a
few thousand, runs every point exactly once through a pause and resume, a SIGKILLed coordinator
and a Redis SIGKILLed and restarted from its append-only file (real Redis, workers, coordinator)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml

from orchestrator.api import load_results
from orchestrator.fill import LOW_WATER
from orchestrator.redis_server import RedisServer
from tests.conftest import Worker, child_env, cli, executions, sweep_meta, write_sweep
from tests.support.waiting import wait_until

POINTS = 20_000
# leases outlive the Redis outage (the suite's 2 s would let a running experiment run again)
ENV = {"ORCHESTRATOR_LEASE_TTL": "15"}


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, fsyncing its append-only file on every write: a SIGKILL
    loses nothing (with ``everysec`` its last second could be lost, and an experiment rerun)."""
    server = RedisServer(tmp_path / "redis", aof="always").start()
    yield server
    server.stop()


def _completed(url: str, sweep_id: str) -> int:
    return int(sweep_meta(url, sweep_id).get("n_completed", 0))


def _coordinator(url: str, workdir: Path, n: int) -> subprocess.Popen:
    log = open(workdir / f"coordinator-{n}.log", "wb")  # noqa: SIM115 - the process owns it
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "coordinator", "--broker", url],
        cwd=workdir,
        env=child_env(workdir, **ENV),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_every_point_of_a_lazy_range_runs_once_through_pause_kill_and_redis_restart(
    workdir: Path, durable_redis: RedisServer
) -> None:
    url = durable_redis.url
    sweep = write_sweep(workdir, name="lazy", points=POINTS, sleep=0.004)  # ~20 s of runs: room for faults
    client = redis.Redis.from_url(url, decode_responses=True)
    workers = [Worker(url, workdir, f"l{i}", concurrency=2, env=ENV).wait_ready() for i in range(2)]
    coordinators = [_coordinator(url, workdir, 1)]
    try:
        submitted = cli("submit", str(sweep), "--broker", url, workdir=workdir)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        sweep_id = next(Path("results").glob("sweep=*")).name.removeprefix("sweep=")
        pending = f"orch:sweep:{sweep_id}:pending:local_cpu"

        wait_until(lambda: _completed(url, sweep_id) >= 2_000, 120, "2,000 completed")
        assert client.zcard(pending) <= 2 * LOW_WATER, "the pending set holds the next chunks only"
        assert cli("pause", sweep_id, "--broker", url, workdir=workdir).returncode == 0
        wait_until(lambda: sweep_meta(url, sweep_id).get("state") == "paused", 30, "paused")
        time.sleep(2.0)  # what was in flight finishes; nothing new starts
        held = _completed(url, sweep_id)
        time.sleep(1.0)
        assert _completed(url, sweep_id) == held, "a paused sweep starts nothing"
        assert cli("resume", sweep_id, "--broker", url, "--detach", workdir=workdir).returncode == 0

        wait_until(lambda: _completed(url, sweep_id) >= held + 1_500, 120, "1,500 more completed")
        assert int(sweep_meta(url, sweep_id)["fill_cursor"]) < POINTS, "the cursor is still mid-range"
        durable_redis.kill()
        time.sleep(1.0)
        durable_redis.start()  # from its append-only file

        wait_until(lambda: _completed(url, sweep_id) >= held + 3_000, 120, "1,500 more after the restart")
        coordinators[0].send_signal(signal.SIGKILL)
        coordinators[0].wait()
        coordinators.append(_coordinator(url, workdir, 2))  # takes the sweep once the lock expires
        wait_until(
            lambda: sweep_meta(url, sweep_id).get("state") == "completed", 240, "the sweep to complete"
        )
    finally:
        for coordinator in coordinators:
            if coordinator.poll() is None:
                coordinator.send_signal(signal.SIGTERM)
                coordinator.wait(timeout=30)
        for worker in workers:
            worker.stop()

    runs = executions(workdir)
    assert len(runs) == POINTS, f"{POINTS - len(runs)} point(s) never ran"
    twice = {x: n for x, n in runs.items() if n > 1}
    assert not twice, f"{len(twice)} point(s) ran more than once: {list(twice.items())[:10]}"
    ok = load_results(sweep_id).query("status == 'completed'")
    assert len(ok) == POINTS and ok["experiment_id"].is_unique, "one result row per point"


def test_an_adaptive_lazy_range_runs_every_point_once_with_the_optimizer_picking_ahead(
    workdir: Path, redis_url: str, start_worker
) -> None:
    """The optimizer's picks enter ahead of the cursor while it walks: the walk skips them."""
    from orchestrator import Orchestrator

    points = 3 * LOW_WATER
    sweep = yaml.safe_load(write_sweep(workdir, name="lazy-adaptive", points=points, sleep=0.003).read_text())
    sweep |= {"adaptive_sampling": True, "objectives": [{"metric": "y", "goal": "minimize"}], "seed": 4}
    start_worker("a1", concurrency=2)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    with Orchestrator(redis_url, optimizer_interval=0.2) as orch:
        sweep_id = orch.submit(sweep).execution_id
        final = orch.wait(sweep_id, timeout=240)
        picked = int(client.hget(f"orch:sweep:{sweep_id}:meta", "n_picked") or 0)
    assert final.state == "completed", final
    runs = executions(workdir)
    assert len(runs) == points and max(runs.values()) == 1, "every point once, picked or walked"
    assert picked > 0, "the optimizer's picks entered ahead of the cursor"
    ok = load_results(sweep_id).query("status == 'completed'")
    assert len(ok) == points and ok["experiment_id"].is_unique
