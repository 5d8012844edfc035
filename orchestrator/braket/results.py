"""What submit and poll hand back, and how a finished task becomes an ``ExperimentResult``.

All of it is JSON-able through ``to_dict`` (Celery's JSON serializer), except the SDK result
object itself, which stays in the worker that fetched it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from core.models import Experiment, ExperimentResult, ExperimentStatus
from orchestrator.store.budget import BudgetAlert
from orchestrator.store.submissions import SubmissionRecord

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
LOCAL_TASK_PREFIX = "local-task/"  # the ARNs of tasks that failed over to the local simulator


@dataclass(frozen=True)
class Submission:
    """A created (or found again) quantum task.

    Attributes:
        task_arn: record it before acking the submit message.
        device: the device it runs on.
        requested_device: the device the sweep asked for.
        client_token: the idempotency token sent.
        reservation_id: the budget reservation key.
        estimated_cost: USD reserved.
        shots: shots requested.
        failover_reason: why ``device`` differs from ``requested_device``, if it does.
        duplicate: this attempt had already been submitted; nothing new was created.
        alerts: budget thresholds the reservation crossed (show them in status).
        attempt: the submission attempt used (later than asked when an earlier task under the asked
            one FAILED or was CANCELLED).
    """

    task_arn: str
    device: str
    requested_device: str
    client_token: str
    reservation_id: str
    estimated_cost: float
    shots: int
    failover_reason: str | None = None
    duplicate: bool = False
    alerts: tuple[BudgetAlert, ...] = ()
    attempt: int = 1

    @property
    def failed_over(self) -> bool:
        return self.device != self.requested_device

    @classmethod
    def from_record(
        cls, record: SubmissionRecord, *, duplicate: bool, alerts: tuple[BudgetAlert, ...] = ()
    ) -> Submission:
        assert record.task_arn is not None
        # every field but these two is the record's own, under the same name
        kept = {f.name: getattr(record, f.name) for f in fields(cls) if f.name not in ("duplicate", "alerts")}
        return cls(**kept, duplicate=duplicate, alerts=alerts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BilledUsage:
    """What the task was billed for, from its metadata, priced with the table.

    Attributes:
        shots: shots billed.
        duration_ms: simulation time reported (managed simulators), else None.
        cost: USD, by the price table's arithmetic.
        price_table: ``<file>@<date>`` of the table used.
    """

    shots: int
    duration_ms: int | None
    cost: float
    price_table: str


@dataclass(frozen=True)
class PollOutcome:
    """The answer of one poll.

    Attributes:
        task_arn / state / device: the task, its Braket state and device.
        result: the SDK's ``GateModelQuantumTaskResult`` when COMPLETED.
        billed: billed usage and cost when COMPLETED.
        record: the submission record (failover, reservation), when this deployment submitted it.
        failure_reason: Braket's reason when FAILED.
        queue_position: position in the device queue while QUEUED.
        alerts: budget thresholds crossed when the cost was settled.
    """

    task_arn: str
    state: str
    device: str | None
    result: Any | None = None
    billed: BilledUsage | None = None
    record: SubmissionRecord | None = None
    failure_reason: str | None = None
    queue_position: str | None = None
    alerts: tuple[BudgetAlert, ...] = ()

    @property
    def terminal(self) -> bool:
        """Stop polling: COMPLETED, FAILED or CANCELLED."""
        return self.state in TERMINAL

    @property
    def completed(self) -> bool:
        return self.state == "COMPLETED"


def local_outcome(task_arn: str, record: SubmissionRecord | None, result_json: str | None) -> PollOutcome:
    """The outcome of a task that failed over to the local simulator (result kept in Redis)."""
    from adapters.simulator import as_quantum_task_result

    if result_json is None:
        return PollOutcome(
            task_arn,
            "FAILED",
            record.device if record else None,
            record=record,
            failure_reason="local result expired from Redis",
        )
    result = as_quantum_task_result(result_json)
    billed = BilledUsage(
        shots=int(result.task_metadata.shots), duration_ms=None, cost=0.0, price_table="local"
    )
    return PollOutcome(
        task_arn, "COMPLETED", record.device if record else None, result=result, billed=billed, record=record
    )


def to_result(
    experiment: Experiment,
    outcome: PollOutcome,
    *,
    metrics: dict[str, float] | None = None,
    attempt: int = 1,
    execution_time: float = 0.0,
) -> ExperimentResult:
    """The ``ExperimentResult`` of a terminal poll: metrics, billed cost, device and failover on it."""
    record = outcome.record
    extra: dict[str, Any] = {"task_arn": outcome.task_arn, "braket_state": outcome.state}
    if record:
        extra.update(
            requested_device=record.requested_device,
            client_token=record.client_token,
            estimated_cost=record.estimated_cost,
        )
        if record.failed_over:
            extra["failover_reason"] = record.failover_reason
    if outcome.billed:
        extra.update(
            billed_shots=outcome.billed.shots,
            billed_duration_ms=outcome.billed.duration_ms,
            price_table=outcome.billed.price_table,
        )
    if outcome.completed:
        status, error, error_class = ExperimentStatus.COMPLETED, None, None
    elif outcome.state == "CANCELLED":
        status, error, error_class = ExperimentStatus.CANCELLED, "quantum task cancelled", None
    else:
        status, error, error_class = (
            ExperimentStatus.FAILED,
            f"quantum task {outcome.state}: {outcome.failure_reason or 'no reason given'}",
            "transient",
        )
    return ExperimentResult.of(
        experiment,
        metrics=metrics or {},
        execution_time=execution_time,
        cost=outcome.billed.cost if outcome.billed else 0.0,
        status=status,
        error_message=error,
        error_class=error_class,
        attempt=attempt,
        device=outcome.device or experiment.device,
        extra=extra,
    )
