"""Fidelity ladders through real workers, the real SDK and the fake Braket service over HTTP
(results in moto's S3): promoted points run on their rung's queue and device, paid rungs keep
the budget and the money adds up, and a worker killed mid-promotion neither pays twice nor
drops a paid result."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.config import SweepConfiguration
from core.plan import SweepPlan
from orchestrator import Orchestrator
from orchestrator.braket.prices import load_price_table
from orchestrator.optimizer import ladder
from orchestrator.store import SweepState, connect
from tests.orchestrator.ladder.test_plan import QAOA
from tests.support.braket_env import BraketTestEnv
from tests.support.fake_devices import IONQ, SV1
from tests.workers.test_braket_faults import assert_money_adds_up, billed_by_service, ledger_and_slots


def _sweep(rungs: list[dict[str, Any]], gammas: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "name": "ladder",
        "projects": [{"name": "qaoa", "path": str(QAOA), "fidelities": rungs}],
        "parameters": {"gamma": gammas, "beta": [0.3], "p": [1], "graph": ["triangle"], "shots": [100]},
        "adaptive_sampling": False,
        **extra,
    }


def promote(redis_url: str, sweep_id: str, gammas: list[float], rung: int = 1) -> list[int]:
    """Promote the points of ``gammas`` to ``rung`` as a refit does (:func:`ladder.promote`): an
    added point with the point's parameters plus ``fidelity``, pending in the rung's queue, first
    in line; returns the promoted experiments' indices."""
    state = SweepState(connect(redis_url))
    meta = state.meta(sweep_id)
    plan = SweepPlan.of(SweepConfiguration.model_validate_json(meta["config"]), meta)
    indices = []
    for gamma in gammas:
        params = {"gamma": gamma, "beta": 0.3, "p": 1, "graph": "triangle", "shots": 100}
        point = ladder.promote(state, sweep_id, plan, "qaoa", params, rung)
        assert point is not None, f"gamma={gamma} was promoted to rung {rung} before"
        indices += plan.indices_of(point, "qaoa")
    return indices


def _extra(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [json.loads(e) if isinstance(e, str) else {} for e in frame["extra"]]


def test_promoted_points_run_on_the_qpu_rung_and_rung_zero_rows_are_untouched(
    paid_env: BraketTestEnv, workdir: Path, redis_url: str, start_worker
) -> None:
    ionq = load_price_table().price_for(IONQ)
    with Orchestrator(redis_url) as orch:
        sid = orch.submit(
            _sweep([{"device": "local:sv"}, {"device": IONQ, "shots": 50}], [0.2, 0.4, 0.6])
        ).execution_id
        promoted = promote(redis_url, sid, [0.2, 0.6])
        start_worker("local", concurrency=2, queues="local_cpu")
        start_worker("qpu", concurrency=1, queues="braket_qpu")  # only it can take rung 1
        final = orch.wait(sid, timeout=120)
        frame = orch.results(sid)
    assert final.state == "completed" and (frame["status"] == "completed").all(), frame[
        ["status", "error_message"]
    ]
    assert len(frame) == 5 and frame["experiment_id"].is_unique
    low, high = frame[frame["fidelity"] == 0], frame[frame["fidelity"] == 1]
    # rung 0: every point of the enumeration, on the free simulator at the point's shots
    assert sorted(low["param.gamma"]) == [0.2, 0.4, 0.6] and set(low["device"]) == {"local:sv"}
    assert set(low["resource"]) == {"local_cpu"} and not low["added"].any()
    assert [e["shots"] for e in _extra(low)] == [100, 100, 100]
    assert (low["cost"].fillna(0) == 0).all()
    # rung 1: the promoted points, on the QPU's queue and device, at the rung's 50 shots
    assert sorted(high["index"]) == sorted(promoted) and sorted(high["param.gamma"]) == [0.2, 0.6]
    assert set(high["device"]) == {IONQ} and set(high["resource"]) == {"braket_qpu"} and high["added"].all()
    assert set(high["param.shots"]) == {100}  # the point's parameters; the run took the rung's shots
    assert [e["billed_shots"] for e in _extra(high)] == [50, 50]
    assert high["cost"].tolist() == pytest.approx([ionq.per_task + 50 * ionq.per_shot] * 2)
    assert high["metric.approx_ratio"].between(0, 1).all()
    stats = paid_env.admin.stats()
    assert stats["created_total"] == 2 and {b["shots"] for b in stats["billed"].values()} == {50}
    assert_money_adds_up(frame, stats, redis_url, sid)


def test_the_budget_holds_across_paid_rungs_under_two_workers(
    paid_env: BraketTestEnv, workdir: Path, redis_url: str, start_worker
) -> None:
    prices = load_price_table()
    gammas = [0.1 * i for i in range(1, 7)]
    # every SV1 point at its billing minimum and two of the four promotions: reservations (SV1's
    # are held at an estimate above the minimum) refuse a promotion before that
    budget = 6 * prices.task_cost(SV1, 100) + 2 * prices.task_cost(IONQ, 10) + 0.01
    for name in ("a", "b"):
        start_worker(name, concurrency=1, queues="braket_sim,braket_qpu")
    with Orchestrator(redis_url) as orch:
        sweep = _sweep([{"device": SV1}, {"device": IONQ, "shots": 10}], gammas, budget_limit=budget)
        sid = orch.submit(sweep).execution_id
        promote(redis_url, sid, gammas[:4])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # paused, and every task it opened settled and written
            status, (spent, reserved, _) = orch.status(sid), ledger_and_slots(redis_url, sid)
            if status.state == "paused" and reserved == 0 and status.counts["running"] == 0:
                frame = orch.results(sid)
                if frame["cost"].sum() == pytest.approx(spent, abs=1e-9):
                    break
            time.sleep(0.2)
        status, frame = orch.status(sid), orch.results(sid)
    assert status.state == "paused", status
    assert any(e["level"] == "alert" and "budget" in e["message"].lower() for e in status.events)
    stats = paid_env.admin.stats()
    done = frame[frame["status"] == "completed"]
    assert set(done["fidelity"]) == {0, 1}, "both paid rungs ran"
    assert set(done.loc[done["fidelity"] == 1, "device"]) == {IONQ}
    assert set(done.loc[done["fidelity"] == 0, "device"]) == {SV1}
    spent = ledger_and_slots(redis_url, sid)[0]
    assert frame["cost"].sum() == pytest.approx(spent, abs=1e-6)
    assert spent == pytest.approx(billed_by_service(stats), abs=1e-6)
    assert 0 < spent <= budget + 1e-9
    assert len(frame[frame["fidelity"] == 1]) < 4, "the budget stopped the promotions short"
    assert_money_adds_up(frame, stats, redis_url, sid)


@pytest.mark.parametrize("moment", ["creating", "polling"])
def test_a_worker_killed_mid_promotion_neither_pays_twice_nor_loses_the_result(
    moment: str, paid_env: BraketTestEnv, workdir: Path, redis_url: str, start_worker
) -> None:
    if moment == "creating":  # the task exists; the worker has not heard back
        paid_env.admin.faults(create_response_delay=3.0)
    else:  # the task is noted and queued on the QPU; the worker polls it
        paid_env.admin.device(IONQ, queue_delay=4.0)
    start_worker("local", concurrency=2, queues="local_cpu")
    victim = start_worker("victim", concurrency=1, queues="braket_qpu")
    with Orchestrator(redis_url, visibility_timeout=6) as orch:
        sid = orch.submit(
            _sweep([{"device": "local:sv"}, {"device": IONQ, "shots": 10}], [0.2, 0.4])
        ).execution_id
        promote(redis_url, sid, [0.2, 0.4])
        deadline = time.monotonic() + 30
        while paid_env.admin.stats()["created_total"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert paid_env.admin.stats()["created_total"] >= 1
        if moment == "polling":
            time.sleep(1.5)  # its ARN recorded, its poll chain on the victim
        victim.kill()  # a promoted task in flight
        paid_env.admin.faults(create_response_delay=0.0)
        start_worker("rescuer", concurrency=1, queues="braket_qpu")
        final = orch.wait(sid, timeout=120)
        frame = orch.results(sid)
    assert final.state == "completed" and (frame["status"] == "completed").all(), frame[
        ["status", "error_message"]
    ]
    high = frame[frame["fidelity"] == 1]
    assert len(high) == 2 and set(high["device"]) == {IONQ} and len(frame) == 4
    stats = paid_env.admin.stats()
    assert stats["created_total"] == 2, "exactly one quantum task per promoted experiment"
    assert all(n == 1 for n in stats["created_per_token"].values())
    assert_money_adds_up(frame, stats, redis_url, sid)
