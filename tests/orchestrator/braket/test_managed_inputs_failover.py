"""Bad input stops before anything is submitted; an unavailable device fails over, on the record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from braket.circuits import Circuit

from core.errors import InputError, ResourceError
from orchestrator.braket import BraketManagedExecutor, BraketUnreachable, DeviceUnavailable, to_result
from orchestrator.braket.executor import LOCAL_TASK_PREFIX
from orchestrator.store import BraketLedgers
from orchestrator.store.budget import BudgetExceeded
from tests.orchestrator.braket.sources import BellSource, experiment
from tests.support.braket_env import BraketTestEnv
from tests.support.fake_devices import IONQ, IQM, SV1
from tests.support.redis_db import TestRedis

BELL = Circuit().h(0).cnot(0, 1)


def make(env: BraketTestEnv, redis: TestRedis, **kw: object) -> BraketManagedExecutor:
    ledgers = BraketLedgers(redis.client, prefix=redis.prefix)
    return BraketManagedExecutor(ledgers, s3_bucket=env.bucket, **kw)  # type: ignore[arg-type]


def closed_window() -> list[dict[str, str]]:
    """A one-minute daily window twelve hours from now: the device is outside it."""
    start = (datetime.now(UTC) + timedelta(hours=12)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=1)
    return [
        {
            "executionDay": "Everyday",
            "windowStartHour": f"{start:%H:%M:%S}",
            "windowEndHour": f"{end:%H:%M:%S}",
        }
    ]


@pytest.mark.parametrize(
    "device, circuit, shots, budget, message",
    [
        ("arn:aws:braket:us-east-1::device/qpu/nobody/Nothing", BELL, 10, None, "unknown Braket device"),
        (IONQ, BELL, 6000, None, r"6000 shots is outside Forte 1's range \[1, 5000\]"),
        (IONQ, BELL, 0, None, r"0 shots is outside Forte 1's range"),
        (IQM, Circuit().h(range(21)), 10, None, "needs 21 qubits, device has 20"),
        (IONQ, Circuit().h(0).cz(0, 1), 10, None, "gates not supported: cz"),
        (SV1, BELL.copy().depolarizing(0, 0.1), 10, None, "does not simulate noise"),
        (IONQ, BELL, 10, -1.0, "budget must be >= 0"),
        (IONQ, BELL, 100, 5.0, r"below the cheapest task on Forte 1 \(\$8\.3000 for 100 shots\)"),
    ],
    ids=[
        "unknown-arn",
        "too-many-shots",
        "zero-shots-qpu",
        "too-wide",
        "gate",
        "noise",
        "negative-budget",
        "budget-below-task",
    ],
)
def test_bad_input_raises_before_anything_is_submitted(
    braket_env: BraketTestEnv,
    test_redis: TestRedis,
    device: str,
    circuit: Circuit,
    shots: int,
    budget: float | None,
    message: str,
) -> None:
    ex = make(braket_env, test_redis)
    with pytest.raises(InputError, match=message):
        ex.validate(circuit, shots, device, budget=budget)
    if budget is None:  # submit validates the same way
        with pytest.raises(InputError, match=message):
            ex.submit(experiment("bad", device), circuit, shots, attempt=1)
    assert braket_env.admin.stats()["created_total"] == 0
    assert ex.budget.status("sweep").reserved == 0


def test_exhausted_budget_refuses_before_submitting(braket_env: BraketTestEnv, test_redis: TestRedis) -> None:
    ex = make(braket_env, test_redis)
    ex.budget.set_limit("sweep", 1.0)
    with pytest.raises(BudgetExceeded, match="would exceed it") as info:
        ex.submit(experiment("dear", IONQ), BELL, 100, attempt=1)
    assert isinstance(info.value, ResourceError)
    assert braket_env.admin.stats()["created_total"] == 0


def test_offline_device_fails_over_to_the_configured_alternative(
    braket_env: BraketTestEnv, test_redis: TestRedis
) -> None:
    braket_env.admin.device(IONQ, status="OFFLINE")
    ex = make(braket_env, test_redis, failover={IONQ: [IQM]})
    exp = experiment("moved", IONQ, shots=100)
    sub = ex.submit(exp, BELL, 100, attempt=1)
    assert sub.device == IQM and sub.failed_over and "OFFLINE" in (sub.failover_reason or "")
    assert sub.estimated_cost == pytest.approx(0.30 + 100 * 0.00145)
    from tests.orchestrator.braket.test_braket_managed import poll_until_terminal

    outcome = poll_until_terminal(ex, sub.task_arn)
    result = to_result(exp, outcome, metrics=BellSource().analyze(outcome.result, {}))
    assert result.device == IQM and result.extra["requested_device"] == IONQ
    assert "OFFLINE" in result.extra["failover_reason"] and result.cost == pytest.approx(sub.estimated_cost)


def test_device_going_offline_between_lookup_and_create_fails_over(
    braket_env: BraketTestEnv, test_redis: TestRedis
) -> None:
    ex = make(braket_env, test_redis, failover={IONQ: [IQM]})
    ex.catalog.get(IONQ)  # cached as ONLINE
    braket_env.admin.device(IONQ, status="OFFLINE")  # CreateQuantumTask answers 424 DeviceOfflineException
    sub = ex.submit(experiment("late", IONQ, shots=10), BELL, 10, attempt=1)
    assert sub.device == IQM and "DeviceOfflineException" in (sub.failover_reason or "")
    assert braket_env.admin.stats()["errors"] == {"DeviceOfflineException": 1}
    assert ex.budget.status("sweep").reserved == pytest.approx(sub.estimated_cost)  # IonQ's hold given back


def test_outside_window_fails_over_to_the_local_simulator(
    braket_env: BraketTestEnv, test_redis: TestRedis
) -> None:
    braket_env.admin.device(IONQ, windows=closed_window())
    ex = make(braket_env, test_redis, failover={IONQ: ["local:sv"]})
    exp = experiment("local", IONQ, shots=50)
    sub = ex.submit(exp, BELL, 50, attempt=1)
    assert sub.task_arn.startswith(LOCAL_TASK_PREFIX) and sub.device == "local:sv"
    assert "outside its execution windows" in (sub.failover_reason or "")
    outcome = ex.poll(sub.task_arn)
    assert outcome.state == "COMPLETED" and outcome.billed.cost == 0
    assert sum(outcome.result.measurement_counts.values()) == 50
    assert to_result(exp, outcome).device == "local:sv"
    assert braket_env.admin.stats()["created_total"] == 0 and ex.budget.status("sweep").reserved == 0


def test_no_alternative_pauses_with_a_resource_error(
    braket_env: BraketTestEnv, test_redis: TestRedis
) -> None:
    braket_env.admin.device(IONQ, status="OFFLINE")
    ex = make(braket_env, test_redis)
    with pytest.raises(DeviceUnavailable, match="OFFLINE") as info:
        ex.submit(experiment("stuck", IONQ), BELL, 10, attempt=1)
    assert isinstance(info.value, ResourceError)
    assert braket_env.admin.stats()["created_total"] == 0


def test_unreachable_braket_is_a_transient_error_and_nothing_is_held(
    braket_env: BraketTestEnv, test_redis: TestRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.braket.aws import clear_sessions
    from orchestrator.braket.catalog import DeviceCatalog
    from orchestrator.braket.retry import RetryPolicy

    monkeypatch.setenv("AWS_ENDPOINT_URL_BRAKET", "http://127.0.0.1:9")  # nothing listens on the discard port
    clear_sessions()
    try:
        quick = RetryPolicy(attempts=2, base=0.01)
        ex = make(braket_env, test_redis, retry=quick, catalog=DeviceCatalog(retry=quick))
        with pytest.raises(BraketUnreachable, match="Braket unreachable"):
            ex.submit(experiment("offline-network", IONQ), BELL, 10, attempt=1)
        assert ex.budget.status("sweep").reserved == 0
    finally:
        monkeypatch.undo()
        clear_sessions()
