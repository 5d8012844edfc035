"""Nothing lost, nothing twice: SIGKILL a worker or the coordinator in the middle of a sweep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from orchestrator.api import load_results
from orchestrator.embedded import EmbeddedRedis
from tests.conftest import child_env, cli, executions, spawn_cli, write_sweep
from tests.support.waiting import wait_until


def _sweep_id() -> str:
    return next(Path("results").glob("sweep=*")).name.removeprefix("sweep=")


def test_sigkill_worker_mid_sweep_loses_nothing(workdir: Path, redis_url: str, start_worker) -> None:
    sweep = write_sweep(workdir, points=16, sleep=0.4)
    victim = start_worker("victim")
    coordinator = spawn_cli("run", str(sweep), "--broker", redis_url, workdir=workdir)
    # kill it while it holds experiments (running, unacked)
    wait_until(lambda: sum(executions(workdir).values()) >= 4, what="first executions")
    victim.kill()
    start_worker("rescuer")
    out, _ = coordinator.communicate(timeout=180)
    assert coordinator.returncode == 0, out

    frame = load_results(_sweep_id())
    ok = frame[frame["status"] == "completed"]
    assert sorted(ok["param.x"]) == list(range(16)), "every experiment has a successful row"
    assert ok["experiment_id"].is_unique, "exactly one successful row each"
    assert set(ok["worker_host"]) >= {"rescuer@" + os.uname().nodename}


def test_a_killed_workers_running_experiments_come_back_when_their_leases_expire(
    workdir: Path, redis_url: str, start_worker
) -> None:
    # Celery alone would bring the killed worker's messages back only after 30 s; the experiments
    # it was running come back once their 2-s leases expire.
    slow = {"ORCHESTRATOR_VISIBILITY_TIMEOUT": "30"}
    sweep = write_sweep(workdir, points=12, sleep=0.5)
    victim = start_worker("victim", env=slow)
    coordinator = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "run", str(sweep), "--broker", redis_url],
        cwd=workdir,
        env=child_env(workdir, **slow),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_until(lambda: sum(executions(workdir).values()) >= 3, what="first executions")
    victim.kill()  # the main process too: nothing requeues its messages
    start_worker("rescuer", env=slow)
    out, _ = coordinator.communicate(timeout=180)
    assert coordinator.returncode == 0, out
    sweep_id = _sweep_id()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    events = " ".join(client.lrange(f"orch:sweep:{sweep_id}:events", 0, -1))
    assert "of a lost worker back to pending" in events, events
    frame = load_results(sweep_id)
    ok = frame[frame["status"] == "completed"]
    assert sorted(ok["param.x"]) == list(range(12)) and ok["experiment_id"].is_unique


def test_messages_a_lost_worker_received_but_never_started_come_back_at_once(
    workdir: Path, redis_url: str, start_worker
) -> None:
    # A message held with an ETA (a retry's backoff, a quantum task's next poll) is received and
    # unacked but not running: no lease covers it, and Celery alone would restore it only after
    # the visibility timeout (600 s here). The coordinator restores what a silent worker noted.
    from core.models import Experiment
    from core.protocol import RunMessage, Task
    from workers.app import create_app

    slow = {"ORCHESTRATOR_VISIBILITY_TIMEOUT": "600", "ORCHESTRATOR_WORKER_LOST_AFTER": "4"}
    victim = start_worker("victim", env=slow)
    app = create_app(broker_url=redis_url)
    app.send_task(
        Task.RUN.value,
        task_id="held-1",
        queue="local_cpu",
        routing_key="local_cpu",
        countdown=3600,
        kwargs=RunMessage(
            experiment=Experiment(sweep_id="s", index=0, experiment_id="e0", project="p", parameters={})
        ).kwargs(),
    )
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    wait_until(
        lambda: client.hlen("unacked") == 1 and client.zcard(f"orch:held:{victim.name}") == 1,
        timeout=30,
        what="the worker holds the message",
    )
    victim.kill()
    assert client.llen("local_cpu") == 0
    coordinator = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "coordinator", "--broker", redis_url],
        cwd=workdir,
        env=child_env(workdir, **slow),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: client.llen("local_cpu") == 1, timeout=30, what="the message back in its queue")
    finally:
        coordinator.terminate()
        out, _ = coordinator.communicate(timeout=30)
    assert client.hlen("unacked") == 0
    assert '"id": "held-1"' in client.lindex("local_cpu", 0)
    assert not client.hexists("orch:workers", victim.name) and not client.exists(f"orch:held:{victim.name}")
    assert "worker victim@" in out and "1 message(s) it held are requeued" in out, out
    assert any(
        "1 message(s) held by lost worker victim@" in e for e in client.lrange("orch:sweep:s:events", 0, -1)
    )


def test_a_heartbeat_forgets_the_noted_messages_its_worker_has_acked(redis_url: str) -> None:
    from orchestrator.store import HOLD_GRACE_S, SweepState

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    state = SweepState(client)
    long_ago = time.time() - HOLD_GRACE_S - 1
    client.zadd("orch:held:w", {"acked": long_ago, "unacked": long_ago, "fresh": time.time()})
    client.hset("unacked", "unacked", "[]")
    state.registry.beat("w", ["local_cpu"], 1, every=0.0)
    assert set(client.zrange("orch:held:w", 0, -1)) == {"unacked", "fresh"}
    assert state.registry.lost(60) == {}
    assert state.registry.lost(-1) == {"w": ["unacked", "fresh"]}


def test_sigkill_coordinator_then_resume_never_reruns_completed(
    workdir: Path, redis_url: str, start_worker
) -> None:
    sweep = write_sweep(workdir, points=20, sleep=0.3)
    start_worker("w1")
    coordinator = spawn_cli(
        "run",
        str(sweep),
        "--broker",
        redis_url,
        workdir=workdir,
        stdout=open(workdir / "run.log", "w"),
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    meta_key = next(iter(client.scan_iter("orch:sweep:*:meta")), None)
    wait_until(lambda: sum(executions(workdir).values()) >= 6, what="some executions")
    coordinator.send_signal(signal.SIGKILL)
    coordinator.wait()
    meta_key = next(iter(client.scan_iter("orch:sweep:*:meta")))
    sweep_id = meta_key.split(":")[2]
    completed_before = {
        int(i) for i, s in client.hgetall(f"orch:sweep:{sweep_id}:terminal").items() if s == "completed"
    }
    assert completed_before, "some experiments completed before the kill"

    resumed = cli("resume", sweep_id, "--broker", redis_url, workdir=workdir)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    runs = executions(workdir)
    assert sorted(runs) == sorted(str(x) for x in range(20)), (runs, resumed.stdout)
    assert max(runs.values()) == 1, f"an experiment ran twice: {runs}"
    frame = load_results(sweep_id)
    ok = frame[frame["status"] == "completed"]
    assert sorted(ok["param.x"]) == list(range(20)) and ok["experiment_id"].is_unique


def test_killed_embedded_run_resumes_from_its_own_redis(workdir: Path) -> None:
    """Embedded mode: SIGKILL `orchestrator run`; its Redis and workers die with it (no orphans),
    and `orchestrator resume` restarts the private Redis from its append-only file."""
    sweep = write_sweep(workdir, points=12, sleep=0.3)
    run = spawn_cli(
        "run",
        str(sweep),
        "--workers",
        "2",
        workdir=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sock = workdir / ".orchestrator" / "redis" / "redis.sock"
    wait_until(lambda: _completed(sock) >= 3, what="some completed experiments")
    run.send_signal(signal.SIGKILL)
    run.wait()
    wait_until(lambda: not _answers(sock), timeout=15, what="the embedded Redis to die with its parent")
    time.sleep(1.0)  # let orphaned pool children (if any) finish
    sweep_id = next(Path("results").glob("sweep=*")).name.removeprefix("sweep=")
    server = EmbeddedRedis(workdir / ".orchestrator").start()  # what survived, read from the AOF
    terminal = redis.Redis(unix_socket_path=str(server.socket), decode_responses=True).hgetall(
        f"orch:sweep:{sweep_id}:terminal"
    )
    server.stop()
    completed_before = sorted(int(i) for i, s in terminal.items() if s == "completed")
    assert completed_before, "some experiments completed before the kill"
    resumed = cli("resume", sweep_id, "--workers", "2", workdir=workdir)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    frame = load_results(sweep_id)
    ok = frame[frame["status"] == "completed"]
    assert sorted(ok["param.x"]) == list(range(12)) and ok["experiment_id"].is_unique
    runs = executions(workdir)
    # An experiment killed mid-run runs again; a *completed* one never does.
    assert all(runs[str(i)] == 1 for i in completed_before), f"a completed experiment ran again: {runs}"


def _answers(sock: Path) -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=0.5).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def _completed(sock: Path) -> int:
    if not _answers(sock):
        return 0
    client = redis.Redis(unix_socket_path=str(sock), socket_timeout=0.5, decode_responses=True)
    return sum(int(client.hget(k, "n_completed") or 0) for k in client.scan_iter("orch:sweep:*:meta"))
