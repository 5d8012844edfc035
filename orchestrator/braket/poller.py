"""Polling a managed quantum task to its end: settle what it billed, or give its money back.

A poll is one short look (GetQuantumTask). A terminal task frees its budget reservation and its
concurrency slot in one atomic step, whichever way it ended: settled to the billed cost when
COMPLETED, released when FAILED or CANCELLED. A simulator task running past the seconds it was
reserved for is cancelled, so that its bill stays within the reservation.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from braket.aws import AwsQuantumTask

from core.errors import ConfigurationError, TransientError
from orchestrator.braket.aws import braket_session
from orchestrator.braket.limits import ServiceLimits
from orchestrator.braket.prices import PriceTable
from orchestrator.braket.results import LOCAL_TASK_PREFIX, TERMINAL, BilledUsage, PollOutcome, local_outcome
from orchestrator.braket.retry import RetryPolicy, error_code
from orchestrator.store.budget import BudgetAlert, BudgetLedger
from orchestrator.store.slots import ConcurrencyGate
from orchestrator.store.submissions import SubmissionRecord, SubmissionStore


class TaskPoller:
    """Poll and cancel of :class:`~orchestrator.braket.executor.BraketManagedExecutor`, which sets
    the attributes below."""

    store: SubmissionStore
    budget: BudgetLedger
    gate: ConcurrencyGate
    prices: PriceTable
    limits: ServiceLimits
    retry: RetryPolicy
    stats: Counter[str]

    def poll(self, task_arn: str) -> PollOutcome:
        """The task's state; on a terminal state, its result and billed cost (settled in the ledger).

        Raises:
            TransientError: Braket or S3 could not be read now; poll again later.
        """
        record = self.store.by_task(task_arn)
        if task_arn.startswith(LOCAL_TASK_PREFIX):
            return local_outcome(task_arn, record, self.store.local_result(task_arn))
        session = braket_session(task_arn.split(":")[3] or None)
        task = AwsQuantumTask(task_arn, aws_session=session, quiet=True)
        meta = self.retry.call(task.metadata, f"GetQuantumTask {task_arn}")
        state, device = meta["status"], meta["deviceArn"]
        queue = (meta.get("queueInfo") or {}).get("position")
        if state not in TERMINAL:
            self._enforce_time_bound(task_arn, meta, record)
            return PollOutcome(task_arn, state, device, record=record, queue_position=queue)
        if state != "COMPLETED":
            self._release(record, device)
            return PollOutcome(
                task_arn, state, device, record=record, failure_reason=meta.get("failureReason")
            )
        result = self.retry.call(task.result, f"results.json of {task_arn}")
        if result is None:
            raise TransientError(f"results of {task_arn} not readable yet")
        billed = self._billed(device, result)
        alerts: tuple[BudgetAlert, ...] = ()
        if record and record.state != "settled":
            alerts = self.budget.settle(
                record.sweep_id, record.reservation_id, billed.cost, slot=self.gate.slot_key(device)
            )
            record.state, record.cost = "settled", billed.cost
            self.store.save(record)
        return PollOutcome(
            task_arn, state, device, result=result, billed=billed, record=record, alerts=alerts
        )

    def _billed(self, device: str, result: Any) -> BilledUsage:
        shots = int(result.task_metadata.shots)
        sim = getattr(result.additional_metadata, "simulatorMetadata", None)
        duration_ms = int(sim.executionDuration) if sim is not None else None
        cost = self.prices.task_cost(device, shots, None if duration_ms is None else duration_ms / 1000)
        return BilledUsage(shots=shots, duration_ms=duration_ms, cost=cost, price_table=self.prices.version)

    def _release(self, record: SubmissionRecord | None, device: str) -> None:
        """A task that ended without a bill (FAILED, CANCELLED): its money and slot go back, at once."""
        if record and record.state in ("intent", "submitted"):
            self.budget.release(record.sweep_id, record.reservation_id, slot=self.gate.slot_key(device))
            record.state = "released"
            self.store.save(record)

    def _enforce_time_bound(
        self, task_arn: str, meta: dict[str, Any], record: SubmissionRecord | None
    ) -> None:
        """Cancel a simulator task that has been RUNNING longer than its reserved seconds.

        Queue time is not billed; simulation is, and a task cannot simulate for longer than it
        has been running. It was first seen RUNNING at most one poll interval after it started,
        so cancelling it at the bound keeps its bill within the reservation plus one poll interval.
        """
        if record is None or meta.get("status") != "RUNNING":
            return
        price = self.prices.price_for(record.device)
        if price.kind != "simulator":
            return
        if record.running_since is None:
            record.running_since = time.time()
            self.store.save(record)
            return
        bound = self.limits.max_task_seconds
        if record.estimated_cost and price.per_minute:
            bound = max(bound, record.estimated_cost / price.per_minute * 60.0)
        if time.time() - record.running_since > bound:
            self.stats["cancelled_over_time"] += 1
            self.cancel(task_arn)

    def cancel(self, task_arn: str) -> str:
        """Cancel a task (idempotent). Returns CANCELLING/CANCELLED, or the terminal state it already had."""
        if task_arn.startswith(LOCAL_TASK_PREFIX):
            return "COMPLETED"
        session = braket_session(task_arn.split(":")[3] or None)

        def once() -> str:
            return session.braket_client.cancel_quantum_task(quantumTaskArn=task_arn)["cancellationStatus"]

        try:
            return self.retry.call(once, f"CancelQuantumTask {task_arn}")
        except ConfigurationError as exc:
            if isinstance(exc.__cause__, Exception) and error_code(exc.__cause__) == "ConflictException":
                return self.poll(task_arn).state
            raise

    def cancel_sweep(self, sweep_id: str) -> dict[str, str]:
        """Cancel every still-queued quantum task of a sweep; returns task ARN -> state after the call."""
        out: dict[str, str] = {}
        for arn in self.store.sweep_tasks(sweep_id):
            outcome = self.poll(arn)
            out[arn] = self.cancel(arn) if outcome.state in ("CREATED", "QUEUED") else outcome.state
        return out
