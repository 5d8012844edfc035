"""Short experiments travel several to a message, each still run and recorded exactly once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import yaml

from core.models import Experiment
from core.settings import Settings
from orchestrator.api import load_results
from orchestrator.pacing import Pacing
from tests.conftest import FIXTURES, child_env, cli, executions, write_sweep

BATCH = "orchestrator.run_batch"


def _experiment(index: int, resource: str = "local_cpu", shot_fraction: float | None = None) -> Experiment:
    return Experiment(
        sweep_id="s",
        index=index,
        experiment_id=f"e{index}",
        project="p",
        parameters={"x": index},
        resource=resource,
        shot_fraction=shot_fraction,
    )


def test_groups_split_by_size_and_queue_and_keep_low_shot_runs_alone() -> None:
    from orchestrator.dispatch import _groups

    exps = [_experiment(i) for i in range(5)] + [
        _experiment(5, "braket_sim"),
        _experiment(6, shot_fraction=0.1),
        _experiment(7),
    ]
    assert [[e.index for e in g] for g in _groups(exps, 2)] == [[0, 1], [2, 3], [4], [5], [6], [7]]
    assert all(len(g) == 1 for g in _groups(exps, 1))


def test_batch_size_follows_the_completion_rate() -> None:
    pacing = Pacing(Settings(batch_seconds=0.05))
    pacing.consumers = {"local_cpu": 2}
    assert pacing.batch("local_cpu") == 1, "nothing measured yet: one experiment per message"
    now = time.monotonic()
    for i in range(8):  # 800 results in the last 1.9 s: 210/s per consumer
        pacing.completed("local_cpu", 100, now - 1.9 + 0.25 * i)
    assert pacing.batch("local_cpu") == 10
    pacing.completed("braket_sim", 4, now)  # 2/s: long experiments keep a message each
    assert pacing.batch("braket_sim") == 1
    assert Pacing(Settings(batch_seconds=0)).batch("local_cpu") == 1


def test_rate_counts_from_the_first_result_not_over_a_span_that_was_empty() -> None:
    pacing = Pacing(Settings())
    now = time.monotonic()
    pacing.completed("local_cpu", 50, now - 1.0)
    pacing.completed("local_cpu", 50, now)
    assert pacing.rate("local_cpu") == pytest.approx(100, rel=0.05), "100 results in the 1 s since the first"
    pacing.completed("braket_sim", 1, now)
    assert pacing.rate("braket_sim") == 2, "a first result alone is counted over half a second"


def test_batch_size_follows_the_run_time_when_reported() -> None:
    pacing = Pacing(Settings(batch_seconds=0.05))
    pacing.consumers = {"local_cpu": 2}
    now = time.monotonic()
    for _ in range(8):
        # 80 results of 10 ms in the last 2 s: 20/s per consumer, a fifth of their work rate
        # (the rest was per-message cost), which by the rate alone would give one per message
        pacing.completed("local_cpu", 10, now, seconds=10 * 0.010)
    assert pacing.duration("local_cpu") == pytest.approx(0.010)
    assert pacing.batch("local_cpu") == 5, "0.05 s of 10-ms experiments"
    pacing.completed("braket_sim", 2, now, seconds=2 * 30.0)
    assert pacing.batch("braket_sim") == 1


def test_each_sweep_is_batched_by_its_own_run_time() -> None:
    # a sweep that follows a no-op one on the same queue must not inherit its 200-a-message batches
    pacing = Pacing(Settings(batch_seconds=0.1))
    pacing.consumers = {"local_cpu": 2}
    now = time.monotonic()
    pacing.completed("local_cpu", 1000, now, seconds=1000 * 0.0005, sweep="noop")
    assert pacing.batch("local_cpu", sweep="noop") == 200
    assert pacing.batch("local_cpu", sweep="slow") == 1, "nothing of its own measured yet"
    assert pacing.window("local_cpu", by_work=True, sweep="slow") == 4, "two messages per consumer"
    pacing.completed("local_cpu", 10, now, seconds=10 * 0.010, sweep="slow")
    assert pacing.batch("local_cpu", sweep="slow") == 10
    assert pacing.window("local_cpu", by_work=True, sweep="slow") == 200  # WINDOW_SECONDS (1 s) of its work


def _batches_received(workdir: Path) -> int:
    return sum(log.read_text(errors="replace").count(f"{BATCH}[") for log in workdir.glob("worker-*.log"))


def test_short_experiments_run_in_batches_exactly_once_with_transient_retries(
    workdir: Path, redis_url: str, start_worker
) -> None:
    points = 400
    sweep = {
        "name": "fast",
        "adaptive_sampling": False,
        "projects": [
            {
                "name": "flaky",
                "path": str(FIXTURES / "projects" / "flaky"),
                "entry": "flaky:every_25th_transient",
            }
        ],
        "parameters": {"x": {"kind": "int", "start": 0, "stop": points - 1}},
    }
    (workdir / "fast.yaml").write_text(yaml.safe_dump(sweep))
    start_worker("w1")
    run = cli("run", "fast.yaml", "--broker", redis_url, workdir=workdir, ORCHESTRATOR_BATCH_SECONDS="0.2")
    assert run.returncode == 0, run.stdout + run.stderr

    assert _batches_received(workdir) > 0, "short experiments were batched"
    sweep_id = next(Path("results").glob("sweep=*")).name.removeprefix("sweep=")
    frame = load_results(sweep_id)
    assert len(frame) == points and (frame["status"] == "completed").all(), frame["status"].value_counts()
    assert frame["experiment_id"].is_unique
    runs = executions(workdir)
    retried = {str(x) for x in range(0, points, 25)}
    assert {x for x, n in runs.items() if n == 2} == retried, "each transient failure ran once more, alone"
    assert all(n == 1 for x, n in runs.items() if x not in retried), "no experiment of a batch ran twice"


def test_a_batch_records_each_run_as_it_returned_even_an_object_the_next_run_changes(
    workdir: Path, redis_url: str, start_worker
) -> None:
    points = 200
    sweep = {
        "name": "same-dict",
        "adaptive_sampling": False,
        "projects": [
            {"name": "same", "path": str(FIXTURES / "projects" / "flaky"), "entry": "flaky:same_dict"}
        ],
        "parameters": {"x": {"kind": "int", "start": 0, "stop": points - 1}},
    }
    (workdir / "same.yaml").write_text(yaml.safe_dump(sweep))
    start_worker("w1")
    run = cli("run", "same.yaml", "--broker", redis_url, workdir=workdir, ORCHESTRATOR_BATCH_SECONDS="0.2")
    assert run.returncode == 0, run.stdout + run.stderr
    assert _batches_received(workdir) > 0, "short experiments were batched"
    sweep_id = next(Path("results").glob("sweep=*")).name.removeprefix("sweep=")
    frame = load_results(sweep_id)
    assert len(frame) == points and (frame["status"] == "completed").all()
    assert (frame["metric.y"] == frame["param.x"]).all(), "each row holds its own run's value"


def test_a_running_batch_lets_its_worker_hold_one_message_ahead_and_no_more(
    workdir: Path, redis_url: str, start_worker
) -> None:
    sweep = write_sweep(workdir, points=150, sleep=0.02)
    start_worker("w1", concurrency=1)
    client = redis.Redis.from_url(redis_url)
    run = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "run", str(sweep), "--broker", redis_url],
        cwd=workdir,
        env=child_env(workdir, ORCHESTRATOR_BATCH_SECONDS="0.2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    held = []  # messages delivered to the worker and not yet acked (kombu's "unacked" hash)
    while run.poll() is None:
        held.append(client.hlen("unacked"))
        time.sleep(0.002)
    assert run.returncode == 0, run.stdout.read() if run.stdout else ""
    assert _batches_received(workdir) > 1, "short experiments were batched"
    assert max(held) == 2, "one process: the batch it runs and one held ahead, never more"
    assert sum(executions(workdir).values()) == 150


def test_sigkill_worker_mid_batch_loses_nothing(workdir: Path, redis_url: str, start_worker) -> None:
    points = 300
    sweep = write_sweep(workdir, points=points, sleep=0.01)
    victim = start_worker("victim")
    coordinator = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "run", str(sweep), "--broker", redis_url],
        cwd=workdir,
        env=child_env(workdir, ORCHESTRATOR_BATCH_SECONDS="0.5"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while _batches_received(workdir) < 2 or sum(executions(workdir).values()) < 100:
        assert time.monotonic() < deadline, "no batches reached the worker"
        time.sleep(0.05)
    victim.kill()  # it holds batches: one running, one prefetched
    start_worker("rescuer")
    out, _ = coordinator.communicate(timeout=240)
    assert coordinator.returncode == 0, out

    sweep_id = next(Path("results").glob("sweep=*")).name.removeprefix("sweep=")
    frame = load_results(sweep_id)
    ok = frame[frame["status"] == "completed"]
    assert sorted(ok["param.x"]) == list(range(points)), "every experiment has a successful row"
    assert ok["experiment_id"].is_unique, "exactly one successful row each"
    assert len(frame) == points
