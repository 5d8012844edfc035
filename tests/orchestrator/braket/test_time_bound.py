"""A per-minute simulator task is reserved for ``max_task_seconds`` and cancelled past it: its
reservation and its concurrency slot go back in one step."""

from __future__ import annotations

import pytest

from orchestrator.braket.limits import ServiceLimits
from orchestrator.braket.prices import load_price_table
from tests.orchestrator.braket.sources import experiment
from tests.orchestrator.braket.test_braket_managed import make, poll_until_terminal, submit_until_done
from tests.support.braket_env import BraketTestEnv
from tests.support.fake_devices import SV1
from tests.support.redis_db import TestRedis


def test_a_simulator_task_running_past_its_bound_is_cancelled_and_released(
    braket_env: BraketTestEnv, test_redis: TestRedis
) -> None:
    braket_env.admin.faults(run_time=30)  # would simulate (and bill) for 30 s
    ex = make(braket_env, test_redis, limits=ServiceLimits(max_task_seconds=1.0))
    exp = experiment("bound", SV1)
    sub = submit_until_done(ex, exp, 100)
    sv1 = load_price_table().price_for(SV1)
    assert sub.estimated_cost == pytest.approx(sv1.cost(100, 3.0)), "the bound (1 s) is under the 3 s minimum"
    assert ex.budget.reservation(exp.sweep_id, sub.reservation_id) == pytest.approx(sub.estimated_cost)
    assert ex.gate.in_flight(SV1) == 1
    outcome = poll_until_terminal(ex, sub.task_arn, timeout=20)
    assert outcome.state == "CANCELLED" and ex.stats["cancelled_over_time"] >= 1
    status = ex.budget.status(exp.sweep_id)
    assert status.reserved == 0 and status.spent == 0 and ex.gate.in_flight(SV1) == 0
