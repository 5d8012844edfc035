"""Managed submissions across real processes: a worker killed mid-submit, and workers racing a budget."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from typing import Any

import pytest
import redis

from orchestrator.braket import BraketManagedExecutor
from orchestrator.store import BraketLedgers
from orchestrator.store.budget import BudgetExceeded
from tests.orchestrator.braket.sources import BellSource, experiment
from tests.support.braket_env import BraketTestEnv
from tests.support.fake_devices import IONQ, IQM
from tests.support.redis_db import TestRedis

IQM_TASK = 0.30 + 100 * 0.00145


def _submit_then_die(url: str, prefix: str, bucket: str) -> None:
    ex = BraketManagedExecutor(BraketLedgers(redis.Redis.from_url(url), prefix=prefix), s3_bucket=bucket)
    create = ex._create

    def create_and_die(*args: Any, **kwargs: Any) -> str:
        create(*args, **kwargs)  # CreateQuantumTask answered...
        os.kill(os.getpid(), signal.SIGKILL)  # ...and the worker dies before recording the ARN
        raise AssertionError("unreachable")

    ex._create = create_and_die  # type: ignore[method-assign]
    ex.submit(experiment("killed", IONQ, shots=10), BellSource().build({}), 10, attempt=1)


def test_worker_killed_right_after_create_leaves_exactly_one_task(
    braket_env: BraketTestEnv, test_redis: TestRedis
) -> None:
    child = mp.get_context("spawn").Process(
        target=_submit_then_die, args=(test_redis.url, test_redis.prefix, braket_env.bucket)
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == -signal.SIGKILL
    assert braket_env.admin.stats()["created_total"] == 1
    # The message is redelivered to another worker: same experiment, same attempt.
    ledgers = BraketLedgers(test_redis.client, prefix=test_redis.prefix)
    ex = BraketManagedExecutor(ledgers, s3_bucket=braket_env.bucket)
    sub = ex.submit(experiment("killed", IONQ, shots=10), BellSource().build({}), 10, attempt=1)
    stats = braket_env.admin.stats()
    assert stats["created_total"] == 1 and list(stats["tasks"]) == [sub.task_arn]
    assert stats["created_per_token"] == {sub.client_token: 1}
    assert ex.budget.status("sweep").reserved == pytest.approx(0.30 + 10 * 0.08)  # held once, not twice


def _race(url: str, prefix: str, bucket: str, worker: int, start: Any, out: Any) -> None:
    ex = BraketManagedExecutor(BraketLedgers(redis.Redis.from_url(url), prefix=prefix), s3_bucket=bucket)
    ex.catalog.get(IQM)
    start.wait(30)
    created = refused = 0
    for i in range(6):
        try:
            ex.submit(
                experiment(f"w{worker}-{i}", IQM, sweep="race", shots=100), BellSource().build({}), 100, 1
            )
            created += 1
        except BudgetExceeded:
            refused += 1
    out.put((created, refused))


def test_four_workers_racing_a_budget_for_k_tasks_submit_at_most_k(
    braket_env: BraketTestEnv, test_redis: TestRedis
) -> None:
    allowed = 7
    ledger = BraketManagedExecutor(
        BraketLedgers(test_redis.client, prefix=test_redis.prefix), s3_bucket=braket_env.bucket
    ).budget
    ledger.set_limit("race", allowed * IQM_TASK + 0.0001)
    # fork: the racers start with Braket's SDK already imported (a spawn costs seconds per process).
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_race, args=(test_redis.url, test_redis.prefix, braket_env.bucket, w, start, out))
        for w in range(4)
    ]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert sum(c for c, _ in results) == allowed and sum(r for _, r in results) == 24 - allowed
    assert braket_env.admin.stats()["created_total"] == allowed
    status = ledger.status("race")
    assert status.reserved == pytest.approx(allowed * IQM_TASK) and status.reserved <= status.limit
    assert [a.threshold for a in status.alerts if a.refused is None] == [50, 80]
    assert any(a.refused is not None and "budget exhausted" in a.message for a in status.alerts)
