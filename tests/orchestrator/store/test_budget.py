"""The budget ledger against a real Redis: atomic reservations, settlement, alerts, and a race."""

from __future__ import annotations

import multiprocessing as mp

import pytest
import redis

from core.errors import InputError, ResourceError
from orchestrator.store.budget import BudgetExceeded, BudgetLedger
from tests.support.redis_db import TestRedis

TASK = 1.75  # one IQM task of 1000 shots: $0.30 + 1000 x $0.00145


def _race(url: str, prefix: str, worker: int, tries: int, start: mp.Event, out: mp.Queue) -> None:
    ledger = BudgetLedger(redis.Redis.from_url(url), prefix=prefix)
    start.wait(30)
    won = 0
    for i in range(tries):
        try:
            ledger.reserve("race", f"w{worker}-e{i}:1", TASK)
            won += 1
        except BudgetExceeded:
            pass
    out.put(won)


@pytest.mark.parametrize("allowed", [1, 5, 13])
def test_four_processes_racing_never_reserve_more_than_the_budget_allows(
    test_redis: TestRedis, allowed: int
) -> None:
    ledger = BudgetLedger(test_redis.client, prefix=test_redis.prefix)
    # A limit a hair above K tasks: float noise must not let a K+1th through or keep the Kth out.
    ledger.set_limit("race", allowed * TASK + 0.001)
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_race, args=(test_redis.url, test_redis.prefix, w, 10, start, out))
        for w in range(4)
    ]
    for p in procs:
        p.start()
    start.set()
    won = sum(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert won == allowed
    status = ledger.status("race")
    assert status.reserved == pytest.approx(allowed * TASK) and status.spent == 0
    assert status.reserved <= status.limit
    refused = [a for a in status.alerts if a.refused is not None]
    assert len(refused) == 1 and "budget exhausted" in refused[0].message


def test_reserve_settle_release_and_alerts(test_redis: TestRedis) -> None:
    ledger = BudgetLedger(test_redis.client, prefix=test_redis.prefix)
    ledger.set_limit("s", 10.0)
    first = ledger.reserve("s", "e1:1", 4.0)
    assert first.state == "reserved" and first.alerts == ()
    again = ledger.reserve("s", "e1:1", 4.0)  # a redelivered message: no second hold
    assert again.state == "duplicate" and ledger.status("s").reserved == pytest.approx(4.0)
    half = ledger.reserve("s", "e2:1", 1.5)
    assert [a.threshold for a in half.alerts] == [50]
    alerts = ledger.settle("s", "e1:1", 3.9)  # billed a little less than reserved
    assert alerts == ()
    assert ledger.settle("s", "e1:1", 3.9) == () and ledger.status("s").spent == pytest.approx(3.9)
    assert ledger.reserve("s", "e1:1", 4.0).state == "settled"  # a settled attempt is never held again
    assert ledger.release("s", "e2:1") and not ledger.release("s", "e2:1")
    eighty = ledger.reserve("s", "e3:1", 4.2)
    assert [a.threshold for a in eighty.alerts] == [80]
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve("s", "e4:1", 2.0)
    assert isinstance(info.value, ResourceError) and info.value.scope == "sweep:s"
    assert info.value.needed == 2.0 and info.value.committed == pytest.approx(8.1)
    ledger.settle("s", "e3:1", 6.1)  # a simulator that ran longer than estimated: spend reaches 100 %
    status = ledger.status("s")
    assert (
        status.spent == pytest.approx(10.0) and status.reserved == 0 and status.remaining == pytest.approx(0)
    )
    assert [a.threshold for a in status.alerts] == [50, 80, 100, 100]


def test_global_budget_applies_across_sweeps(test_redis: TestRedis) -> None:
    ledger = BudgetLedger(test_redis.client, prefix=test_redis.prefix)
    ledger.set_limit(None, 5.0)
    ledger.reserve("a", "x:1", 3.0)
    with pytest.raises(BudgetExceeded, match="global budget"):
        ledger.reserve("b", "y:1", 3.0)
    assert ledger.status("b").reserved == 0  # nothing held in the sweep when the global refuses
    status = ledger.status("a")
    assert (
        status.limit is None and status.global_limit == 5.0 and status.global_reserved == pytest.approx(3.0)
    )


def test_negative_amounts_and_limits_are_input_errors(test_redis: TestRedis) -> None:
    ledger = BudgetLedger(test_redis.client, prefix=test_redis.prefix)
    with pytest.raises(InputError, match="budget must be >= 0"):
        ledger.set_limit("s", -1)
    with pytest.raises(InputError):
        ledger.reserve("s", "e:1", -0.1)


def test_settle_and_release_free_the_concurrency_slot_in_the_same_step(test_redis: TestRedis) -> None:
    from orchestrator.store.slots import ConcurrencyGate

    class TwoSlots:
        def concurrency_for(self, device_arn: str) -> int:
            return 2

    ledger = BudgetLedger(test_redis.client, prefix=test_redis.prefix)
    gate = ConcurrencyGate(test_redis.client, TwoSlots(), prefix=test_redis.prefix)
    slot = gate.slot_key("sv1")
    for rid in ("a:1", "b:1"):
        ledger.reserve("s", rid, 0.075)
        assert gate.acquire("sv1", rid)
    assert gate.in_flight("sv1") == 2 and not gate.acquire("sv1", "c:1")
    ledger.settle("s", "a:1", 0.01, slot=slot)
    assert gate.in_flight("sv1") == 1
    ledger.release("s", "b:1", slot=slot)
    assert gate.in_flight("sv1") == 0
    status = ledger.status("s")
    assert status.reserved == 0 and status.spent == pytest.approx(0.01)
    ledger.release("s", "b:1", slot=slot)  # idempotent
    ledger.settle("s", "a:1", 0.01, slot=slot)
    assert ledger.status("s").spent == pytest.approx(0.01) and gate.in_flight("sv1") == 0
