"""Paid work under faults, through real workers, the real SDK and the fake Braket service: no paid
result dropped, no reservation or slot leaked, a FAILED task replaced once, budgets that hold on
per-minute simulators. Money is checked three ways: Parquet, the fake service's bill, the ledger."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pandas as pd
import pytest
import redis

from orchestrator import Orchestrator
from orchestrator.braket.limits import ServiceLimits
from orchestrator.braket.prices import load_price_table
from orchestrator.store.budget import BudgetLedger
from orchestrator.store.slots import ConcurrencyGate
from tests.support.braket_env import braket_env, braket_services  # noqa: F401 - fixtures
from tests.support.fake_devices import IONQ, SV1
from tests.workers.test_braket_sweeps import _sweep


@pytest.fixture
def paid_env(braket_env, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    monkeypatch.setenv("ORCHESTRATOR_BRAKET_S3_BUCKET", braket_env.bucket)
    monkeypatch.setenv("ORCHESTRATOR_POLL_INTERVAL", "0.3")
    return braket_env


def billed_by_service(stats: dict) -> float:
    """USD the fake service's own record of COMPLETED tasks comes to, priced with the table."""
    prices = load_price_table()
    return sum(
        prices.task_cost(
            b["device"], b["shots"], None if b["duration_ms"] is None else b["duration_ms"] / 1000
        )
        for b in stats["billed"].values()
    )


def ledger_and_slots(redis_url: str, sweep_id: str) -> tuple[float, float, int]:
    """(spent, reserved, SV1 slots held) as the workers' ledger sees them."""
    client = redis.Redis.from_url(redis_url)
    status = BudgetLedger(client).status(sweep_id)
    return status.spent, status.reserved, ConcurrencyGate(client, ServiceLimits()).in_flight(SV1)


def assert_money_adds_up(frame: pd.DataFrame, stats: dict, redis_url: str, sweep_id: str) -> None:
    """Every COMPLETED task's result is in Parquet, and Parquet == the service's bill == the ledger."""
    completed_arns = {arn for arn, state in stats["tasks"].items() if state == "COMPLETED"}
    rows = {
        json.loads(e)["task_arn"]: s
        for e, s in zip(frame["extra"], frame["status"], strict=True)
        if "task_arn" in json.loads(e)
    }
    lost = {arn for arn in completed_arns if rows.get(arn) != "completed"}
    assert not lost, (
        f"{len(lost)} COMPLETED task(s) without a completed row: {frame[['status', 'error_message']]}"
    )
    spent, reserved, slots = ledger_and_slots(redis_url, sweep_id)
    assert frame["cost"].sum() == pytest.approx(billed_by_service(stats))
    assert spent == pytest.approx(billed_by_service(stats), abs=1e-6)
    assert reserved == 0 and slots == 0
    assert all(n == 1 for n in stats["created_per_token"].values()), "a token created two tasks"


def test_sigkill_storm_at_default_max_attempts_drops_no_paid_result(
    paid_env, workdir: Path, redis_url: str, start_worker
) -> None:
    paid_env.admin.faults(queue_delay=1.0, create_response_delay=0.2, seed=3)
    rng = random.Random(5)
    names = ["a", "b"]
    workers = {n: start_worker(n, concurrency=2, queues="braket_qpu,braket_sim") for n in names}
    with Orchestrator(redis_url, worker_lost_after=3) as orch:  # default max_attempts (3)
        qpu = orch.submit(_sweep(IONQ, "braket_qpu", name="qpu", gammas=[0.05 * i for i in range(1, 13)]))
        sim = orch.submit(_sweep(SV1, "braket_sim", name="sim", gammas=[0.05 * i for i in range(1, 13)]))
        storm_end = time.monotonic() + 15
        generation = 0
        while time.monotonic() < storm_end:
            time.sleep(rng.uniform(1.5, 2.0))
            victim = rng.choice(names)
            workers[victim].kill()
            generation += 1
            workers[victim] = start_worker(
                f"{victim}{generation}", concurrency=2, queues="braket_qpu,braket_sim"
            )
        finals = {s.execution_id: orch.wait(s.execution_id, timeout=240) for s in (qpu, sim)}
        frames = {sid: orch.results(sid) for sid in finals}
    stats = paid_env.admin.stats()
    assert stats["created_total"] > 0
    for sid, final in finals.items():
        frame = frames[sid]
        assert final.state == "completed" and len(frame) == 12 and frame["experiment_id"].is_unique
        given_up = frame[frame["error_message"].fillna("").str.contains("gave up")]
        # a delivery count only ever gives up an experiment that has no quantum task
        assert all("nothing was paid" in m for m in given_up["error_message"]), given_up["error_message"]
    both = pd.concat(frames.values())
    completed_arns = {arn for arn, state in stats["tasks"].items() if state == "COMPLETED"}
    recorded = {json.loads(e).get("task_arn") for e in both.loc[both["status"] == "completed", "extra"]}
    assert completed_arns <= recorded, "a COMPLETED task's result is missing from Parquet"
    assert both["cost"].sum() == pytest.approx(billed_by_service(stats))
    for sid in finals:
        spent, reserved, slots = ledger_and_slots(redis_url, sid)
        assert spent == pytest.approx(frames[sid]["cost"].sum(), abs=1e-6) and reserved == 0
    assert ledger_and_slots(redis_url, next(iter(finals)))[2] == 0
    assert all(n == 1 for n in stats["created_per_token"].values())


@pytest.mark.parametrize("path", ["completed", "failed", "cancelled"])
def test_every_terminal_path_settles_the_money_and_frees_the_slot(
    path: str, paid_env, workdir: Path, redis_url: str, start_worker
) -> None:
    if path == "failed":
        paid_env.admin.faults(fail_probability=1.0)
    if path == "cancelled":
        paid_env.admin.device(SV1, queue_delay=600)
    start_worker("w", concurrency=2, queues="braket_sim", env={"ORCHESTRATOR_MAX_ATTEMPTS": "1"})
    with Orchestrator(redis_url) as orch:
        sid = orch.submit(_sweep(SV1, "braket_sim", gammas=(0.2, 0.4, 0.6))).execution_id
        if path == "cancelled":
            deadline = time.monotonic() + 60
            while ledger_and_slots(redis_url, sid)[2] < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            spent, reserved, slots = ledger_and_slots(redis_url, sid)
            assert slots == 3 and reserved > 0, "three open tasks hold money and slots"
            orch.cancel(sid)
        final = orch.wait(sid, timeout=120)
        frame = orch.results(sid)
    assert set(frame["status"]) == {path}, frame[["status", "error_message"]]
    assert final.state == ("cancelled" if path == "cancelled" else "completed")
    assert_money_adds_up(frame, paid_env.admin.stats(), redis_url, sid)
    if path != "completed":
        assert ledger_and_slots(redis_url, sid)[0] == 0, "nothing billed, nothing spent"


def test_a_failed_task_is_followed_by_exactly_one_new_task_with_a_new_token(
    paid_env, workdir: Path, redis_url: str, start_worker
) -> None:
    paid_env.admin.faults(fail_next=1)
    start_worker("w", concurrency=1, queues="braket_qpu")
    with Orchestrator(redis_url) as orch:
        sid = orch.submit(_sweep(IONQ, "braket_qpu", gammas=(0.2,))).execution_id
        final = orch.wait(sid, timeout=120)
        frame = orch.results(sid)
    stats = paid_env.admin.stats()
    assert final.state == "completed" and frame["status"].tolist() == ["completed"]
    assert stats["created_total"] == 2, "the FAILED task, then exactly one more"
    assert sorted(stats["tasks"].values()) == ["COMPLETED", "FAILED"]
    assert len(set(stats["tokens"].values())) == 2, "the second task has a new client token"
    assert json.loads(frame["extra"][0])["task_arn"] in {
        a for a, s in stats["tasks"].items() if s == "COMPLETED"
    }
    assert_money_adds_up(frame, stats, redis_url, sid)


def test_rerunning_a_cancelled_sweep_runs_new_tasks(
    paid_env, workdir: Path, redis_url: str, start_worker
) -> None:
    paid_env.admin.device(IONQ, queue_delay=600)
    start_worker("w", concurrency=2, queues="braket_qpu")
    sweep = _sweep(IONQ, "braket_qpu", gammas=(0.2, 0.4))
    with Orchestrator(redis_url) as orch:
        sid = orch.submit(sweep).execution_id
        deadline = time.monotonic() + 60
        while paid_env.admin.stats()["created_total"] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        orch.cancel(sid)
        assert orch.wait(sid, timeout=60).state == "cancelled"
        paid_env.admin.device(IONQ, queue_delay=0.05)
        again = orch.submit(sweep).execution_id
        final = orch.wait(again, timeout=120)
        frame = orch.results(again)
    stats = paid_env.admin.stats()
    assert final.state == "completed" and final.counts["completed"] == 2, final.counts
    assert stats["created_total"] == 4, "two cancelled, two new"
    completed = {a for a, s in stats["tasks"].items() if s == "COMPLETED"}
    done_rows = frame[frame["status"] == "completed"]
    assert {json.loads(e)["task_arn"] for e in done_rows["extra"]} == completed


def test_a_per_minute_simulator_under_a_budget_never_exceeds_it(
    paid_env, workdir: Path, redis_url: str, start_worker
) -> None:
    paid_env.admin.faults(billed_duration_ms=60_000)  # every task bills a full minute
    sv1 = load_price_table().price_for(SV1)
    budget = 0.2  # 2.7 one-minute tasks
    start_worker("w", concurrency=2, queues="braket_sim")
    with Orchestrator(redis_url) as orch:
        sid = orch.submit(
            _sweep(SV1, "braket_sim", gammas=[0.1 * i for i in range(1, 9)], budget_limit=budget)
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status = orch.status(sid.execution_id)
            if status.state == "paused" and status.counts["running"] == 0:
                break
            time.sleep(0.2)
    spent, reserved, _ = ledger_and_slots(redis_url, sid.execution_id)
    assert status.state == "paused", status.events
    assert spent == pytest.approx(billed_by_service(paid_env.admin.stats()), abs=1e-6)
    assert spent <= budget and reserved == 0
    assert spent == pytest.approx(2 * sv1.per_minute), "two one-minute tasks fit, a third does not"
