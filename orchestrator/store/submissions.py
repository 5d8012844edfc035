"""Submission records of managed quantum tasks in Redis (``braket:...``): what makes a redelivered
submit find the task it already paid for."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import redis

from orchestrator.store import keys

RECORD_TTL = 30 * 24 * 3600  # QPU queues can take days; results must still settle after that


@dataclass
class SubmissionRecord:
    """One attempt of one experiment on a managed device.

    Attributes:
        experiment_id / sweep_id / attempt: whose attempt.
        requested_device: the device the sweep asked for.
        device: the device actually used (differs after a failover).
        client_token: sent with CreateQuantumTask.
        reservation_id: the budget reservation (and concurrency slot) key.
        estimated_cost: USD reserved.
        shots: shots requested.
        task_arn: set once CreateQuantumTask answered (``local:...`` for a local failover).
        failover_reason: why ``device`` is not ``requested_device``.
        state: ``intent``, ``submitted``, ``settled`` (billed) or ``released`` (the task FAILED or
            was CANCELLED: never a result to reuse, and its attempt is never submitted again).
        cost: USD billed, once settled.
        running_since: Unix time a poll first saw the task RUNNING (per-minute time bounds).
    """

    experiment_id: str
    sweep_id: str
    attempt: int
    requested_device: str
    device: str
    client_token: str
    reservation_id: str
    estimated_cost: float
    shots: int
    task_arn: str | None = None
    failover_reason: str | None = None
    state: str = "intent"
    cost: float | None = None
    running_since: float | None = None

    @property
    def failed_over(self) -> bool:
        return self.device != self.requested_device


class SubmissionStore:
    """Submission records under ``{prefix}braket:...``.

    Keys: ``attempt:{experiment}:{attempt}`` (the record, JSON), ``task:{arn}`` (-> attempt key),
    ``sweep:{sweep}`` (set of task ARNs, for cancelling a sweep), ``local:{arn}`` (local results).
    """

    def __init__(self, client: redis.Redis, *, prefix: str = keys.PREFIX) -> None:
        self.client, self.prefix = client, prefix

    def get(self, experiment_id: str, attempt: int) -> SubmissionRecord | None:
        raw = self.client.get(keys.submission(experiment_id, attempt, prefix=self.prefix))
        return None if raw is None else SubmissionRecord(**json.loads(raw))

    def live(self, experiment_id: str, attempt: int) -> tuple[int, SubmissionRecord | None]:
        """The first attempt from ``attempt`` on whose task did not end FAILED or CANCELLED, with its
        record (None: never submitted). Re-running a sweep starts its attempts at 1 again; a dead
        task found under that attempt's token must not come back as its result."""
        while (record := self.get(experiment_id, attempt)) is not None and record.state == "released":
            attempt += 1
        return attempt, record

    def by_task(self, task_arn: str) -> SubmissionRecord | None:
        key = self.client.get(keys.task_submission(task_arn, prefix=self.prefix))
        raw = self.client.get(key) if key else None
        return None if raw is None else SubmissionRecord(**json.loads(raw))

    def save(self, record: SubmissionRecord) -> None:
        key = keys.submission(record.experiment_id, record.attempt, prefix=self.prefix)
        pipe = self.client.pipeline(transaction=True)
        pipe.set(key, json.dumps(asdict(record)), ex=RECORD_TTL)
        if record.task_arn:
            tasks = keys.sweep_tasks(record.sweep_id, prefix=self.prefix)
            pipe.set(keys.task_submission(record.task_arn, prefix=self.prefix), key, ex=RECORD_TTL)
            pipe.sadd(tasks, record.task_arn)
            pipe.expire(tasks, RECORD_TTL)
        pipe.execute()

    def sweep_tasks(self, sweep_id: str) -> list[str]:
        """Task ARNs submitted for ``sweep_id``."""
        return sorted(
            m.decode() if isinstance(m, bytes) else m
            for m in self.client.smembers(keys.sweep_tasks(sweep_id, prefix=self.prefix))
        )

    def save_local_result(self, task_arn: str, result_json: str) -> None:
        self.client.set(keys.local_result(task_arn, prefix=self.prefix), result_json, ex=RECORD_TTL)

    def local_result(self, task_arn: str) -> str | None:
        raw = self.client.get(keys.local_result(task_arn, prefix=self.prefix))
        return raw.decode() if isinstance(raw, bytes) else raw
