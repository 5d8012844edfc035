"""A Redis killed mid-sweep and restarted from its append-only file: every long-running process
waits it out, and the sweep completes with one result per experiment, nothing lost."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from orchestrator.api import load_results
from orchestrator.redis_server import RedisServer
from tests.conftest import Worker, cli, spawn_cli, sweep_meta, write_sweep
from tests.support.waiting import wait_until


@pytest.fixture
def killable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, with an append-only file, that the test may SIGKILL."""
    server = RedisServer(tmp_path / "redis", aof="everysec").start()
    yield server
    server.stop()


def test_a_redis_killed_twice_mid_sweep_loses_nothing(workdir: Path, killable_redis: RedisServer) -> None:
    url, points = killable_redis.url, 60
    sweep = write_sweep(workdir, name="outage", points=points, sleep=0.1)
    workers = [Worker(url, workdir, f"o{i}", concurrency=2).wait_ready() for i in range(2)]
    log = open(workdir / "coordinator.log", "wb")  # noqa: SIM115
    coordinator = spawn_cli(
        "coordinator",
        "--broker",
        url,
        workdir=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        submitted = cli("submit", str(sweep), "--broker", url, workdir=workdir)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        sweep_id = next(Path("results").glob("sweep=*")).name.removeprefix("sweep=")

        for outage, at in enumerate((15, 35), start=1):
            wait_until(
                lambda at=at: int(sweep_meta(url, sweep_id).get("n_completed", 0)) >= at,
                120,
                f"{at} completed",
            )
            killable_redis.kill()
            time.sleep(1.5)
            killable_redis.start()  # from its append-only file
            # two outages, not one long one: the next kill waits for the coordinator to be back
            wait_until(
                lambda n=outage: (
                    (workdir / "coordinator.log").read_text().count("broker reachable again") >= n
                ),
                120,
                "the coordinator to reconnect",
            )
        wait_until(
            lambda: sweep_meta(url, sweep_id).get("state") == "completed", 240, "the sweep to complete"
        )
        assert coordinator.poll() is None, "the coordinator survived both outages"
    finally:
        coordinator.send_signal(signal.SIGTERM)
        coordinator.wait(timeout=30)
        log.close()
        for worker in workers:
            worker.stop()

    frame = load_results(sweep_id)
    ok = frame[frame["status"] == "completed"]
    assert sorted(ok["param.x"]) == list(range(points)), "every experiment has its result"
    assert ok["experiment_id"].is_unique, "and only one"
    text = (workdir / "coordinator.log").read_text()
    assert text.count("broker unreachable") == 2, "the outage is logged once each time, not per attempt"
    assert "Traceback" not in text, text[-3000:]


def test_the_embedded_redis_killed_mid_run_is_restarted_from_its_aof(workdir: Path) -> None:
    sweep = write_sweep(workdir, name="embedded-outage", points=30, sleep=0.1)
    run = spawn_cli("run", str(sweep), "--workers", "2", workdir=workdir)
    sock = workdir / ".orchestrator" / "redis" / "redis.sock"

    def completed() -> int:
        try:
            client = redis.Redis(unix_socket_path=str(sock), socket_timeout=0.5, decode_responses=True)
            return sum(int(client.hget(k, "n_completed") or 0) for k in client.scan_iter("orch:sweep:*:meta"))
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return 0

    wait_until(lambda: completed() >= 8, 120, "some completed experiments")
    pid = redis.Redis(unix_socket_path=str(sock)).info("server")["process_id"]
    subprocess.run(["kill", "-9", str(pid)], check=True)
    out, _ = run.communicate(timeout=240)
    assert run.returncode == 0, out[-3000:]
    sweep_id = next(Path("results").glob("sweep=*")).name.removeprefix("sweep=")
    ok = load_results(sweep_id).query("status == 'completed'")
    assert sorted(ok["param.x"]) == list(range(30)) and ok["experiment_id"].is_unique
