"""Submission records against a real Redis: a FAILED or CANCELLED task's attempt is never reused."""

from __future__ import annotations

from orchestrator.store.submissions import SubmissionRecord, SubmissionStore
from tests.support.redis_db import TestRedis


def _record(attempt: int, state: str, arn: str | None = None) -> SubmissionRecord:
    return SubmissionRecord(
        experiment_id="e",
        sweep_id="s",
        attempt=attempt,
        requested_device="dev",
        device="dev",
        client_token=f"tok{attempt}",
        reservation_id=f"e:{attempt}",
        estimated_cost=1.0,
        shots=10,
        task_arn=arn,
        state=state,
    )


def test_live_skips_the_attempts_whose_task_failed_or_was_cancelled(test_redis: TestRedis) -> None:
    store = SubmissionStore(test_redis.client, prefix=test_redis.prefix)
    assert store.live("e", 1) == (1, None), "never submitted"
    store.save(_record(1, "released", "arn:1"))
    store.save(_record(2, "released", "arn:2"))
    assert store.live("e", 1) == (3, None), "a new attempt, so a new client token"
    store.save(_record(3, "submitted", "arn:3"))
    attempt, record = store.live("e", 1)
    assert attempt == 3 and record is not None and record.task_arn == "arn:3"
    store.save(_record(3, "settled", "arn:3"))
    assert store.live("e", 2)[0] == 3, "a completed (billed) task is the result"
