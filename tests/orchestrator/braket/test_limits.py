"""Service limits: defaults, the Service Quotas API, overrides, and their enforcement."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import InputError
from orchestrator.braket.catalog import DeviceCatalog, local_device
from orchestrator.braket.limits import (
    ServiceLimits,
    check_service_limits,
    enforce_shots,
    load_service_limits,
)
from orchestrator.store import BraketLedgers
from orchestrator.store.slots import ConcurrencyGate
from tests.support.braket_env import BraketTestEnv
from tests.support.fake_devices import DM1, IONQ, SV1
from tests.support.redis_db import TestRedis


class StubQuotas:
    """A ``service-quotas`` client answering two pages, the way AWS names Braket quotas."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def list_service_quotas(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if "NextToken" not in kwargs:
            return {
                "Quotas": [
                    {"QuotaName": "Rate of CreateQuantumTask requests", "Value": 10.0},
                    {"QuotaName": "Burst rate of CreateQuantumTask requests", "Value": 15.0},
                ],
                "NextToken": "p2",
            }
        return {
            "Quotas": [
                {"QuotaName": "Number of concurrent SV1 quantum tasks", "Value": 60.0},
                {"QuotaName": "Rate of API requests", "Value": 100.0},
                {"QuotaName": "Something else", "Value": 1.0},
            ]
        }


class BrokenQuotas:
    def list_service_quotas(self, **kwargs: Any) -> dict[str, Any]:
        raise ConnectionError("no route to host")


def test_defaults_when_no_api(monkeypatch: pytest.MonkeyPatch) -> None:
    status = load_service_limits(query_api=False)
    assert status.source == "defaults"
    assert (status.limits.create_task_rate, status.limits.create_task_burst) == (20.0, 40.0)
    assert status.limits.concurrency_for(SV1) == 35 and status.limits.concurrency_for(IONQ) is None


def test_read_from_service_quotas_then_overridden() -> None:
    stub = StubQuotas()
    status = load_service_limits(quotas_client=stub)
    assert status.source == "service-quotas" and [c.get("NextToken") for c in stub.calls] == [None, "p2"]
    limits = status.limits
    assert (limits.create_task_rate, limits.create_task_burst, limits.api_rate) == (10.0, 15.0, 100.0)
    assert limits.concurrency_for(SV1) == 60 and limits.concurrency_for(DM1) == 35
    configured = load_service_limits(quotas_client=stub, overrides={"create_task_rate": 5.0})
    assert configured.source == "configured" and configured.limits.create_task_rate == 5.0


def test_unreachable_api_falls_back_to_defaults_with_a_note() -> None:
    status = load_service_limits(quotas_client=BrokenQuotas())
    assert status.source == "defaults" and "unreachable" in status.notes[0]
    with pytest.raises(InputError, match="unknown service limit"):
        load_service_limits(query_api=False, overrides={"create_tasks_per_second": 1})


def test_shots_are_enforced_against_device_and_quota(braket_env: BraketTestEnv) -> None:
    ionq = DeviceCatalog().get(IONQ)
    enforce_shots(ionq, 5000)
    for bad in (0, 5001):
        with pytest.raises(InputError, match=r"outside Forte 1's range \[1, 5000\]"):
            enforce_shots(ionq, bad)
    capped = ServiceLimits(max_shots={SV1: 500})
    with pytest.raises(InputError, match=r"\[0, 500\]"):
        enforce_shots(DeviceCatalog().get(SV1), 501, capped)
    enforce_shots(local_device("local:sv"), 0)


def test_concurrency_gate_caps_open_tasks_and_is_idempotent(test_redis: TestRedis) -> None:
    limits = ServiceLimits(concurrent_tasks={SV1: 2})
    gate = ConcurrencyGate(test_redis.client, limits, prefix=test_redis.prefix)
    assert gate.acquire(SV1, "a:1") and gate.acquire(SV1, "a:1") and gate.acquire(SV1, "b:1")
    assert not gate.acquire(SV1, "c:1")
    gate.release(SV1, "a:1")
    assert gate.acquire(SV1, "c:1") and gate.acquire(IONQ, "anything")  # QPUs: no cap
    status = check_service_limits(
        ledgers=BraketLedgers(test_redis.client, prefix=test_redis.prefix),
        status=load_service_limits(query_api=False, overrides={"concurrent_tasks": {SV1: 2}}),
    )
    assert status.in_flight == {SV1: 2} and status.saturated == [SV1]
    stale = ConcurrencyGate(test_redis.client, limits, prefix=test_redis.prefix, stale_after=-1)
    assert stale.acquire(SV1, "d:1")  # members older than stale_after are dropped first
