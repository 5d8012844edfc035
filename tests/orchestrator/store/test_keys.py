"""The Braket ledgers' key names are pinned: a deployment's money, slots and submission records
already in Redis must still be found after any change to how the keys are built."""

from __future__ import annotations

from orchestrator.store.budget import BudgetLedger
from orchestrator.store.slots import ConcurrencyGate
from orchestrator.store.submissions import SubmissionRecord, SubmissionStore
from orchestrator.store.throttle import TokenBucket
from tests.support.redis_db import TestRedis


class OneSlot:
    def concurrency_for(self, device_arn: str) -> int:
        return 1


def test_every_braket_ledger_key_keeps_its_name(test_redis: TestRedis) -> None:
    client, prefix = test_redis.client, test_redis.prefix
    ledger = BudgetLedger(client, prefix=prefix)
    ledger.set_limit("s", 10.0)
    ledger.set_limit(None, 10.0)
    ledger.reserve("s", "e:1", 6.0)  # past 50 % of both: alerts fire in both scopes
    ledger.settle("s", "e:1", 6.0)
    ledger.reserve("s", "e:2", 1.0)
    gate = ConcurrencyGate(client, OneSlot(), prefix=prefix)
    assert gate.acquire("dev", "e:2") and gate.slot_key("dev") == f"{prefix}limits:open:dev"
    bucket = TokenBucket(client, "CreateQuantumTask:us-east-1", rate=1.0, prefix=prefix)
    assert bucket.try_acquire().granted
    store = SubmissionStore(client, prefix=prefix)
    store.save(
        SubmissionRecord(
            "e", "s", 1, "dev", "dev", "tok", "e:1", 6.0, 10, task_arn="arn:1", state="submitted"
        )
    )
    store.save_local_result("arn:1", "{}")
    found = sorted(k.decode().removeprefix(prefix) for k in client.scan_iter(f"{prefix}*"))
    assert found == sorted(
        [
            "budget:sweep:s",
            "budget:sweep:s:reservations",
            "budget:sweep:s:settled",
            "budget:sweep:s:fired",
            "budget:sweep:s:alerts",
            "budget:global",
            "budget:global:fired",
            "budget:global:alerts",
            "limits:open:dev",
            "throttle:CreateQuantumTask:us-east-1",
            "braket:attempt:e:1",
            "braket:task:arn:1",
            "braket:sweep:s",
            "braket:local:arn:1",
        ]
    )
