"""The wire between the coordinator and the workers: queues, task names, messages, lifecycles.

Everything that crosses a process is defined here once. The sender builds a frozen model and
sends ``model.kwargs()``; the task rebuilds the same model with ``Model.of(kwargs)``, and
:func:`message_of` rebuilds any task's message read back from the broker. Keyword arguments
stay flat so Flower shows a task's sweep, experiment and project by name. JSON only.
This module imports neither Celery nor Redis: :mod:`orchestrator.dispatch` and
:mod:`workers` both depend on it, and not on each other.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from core.models import Experiment


class Queue(StrEnum):
    """Celery queues: one per kind of resource, plus ``control`` for the beat task."""

    LOCAL_CPU = "local_cpu"
    BRAKET_SIM = "braket_sim"
    BRAKET_QPU = "braket_qpu"
    CONTROL = "control"


#: the queues experiments run on; one pending set each
RESOURCE_QUEUES: tuple[str, ...] = (Queue.LOCAL_CPU.value, Queue.BRAKET_SIM.value, Queue.BRAKET_QPU.value)
QUEUES: tuple[str, ...] = (*RESOURCE_QUEUES, Queue.CONTROL.value)


class Task(StrEnum):
    """Registered task names (what Flower lists)."""

    RUN = "orchestrator.run_experiment"
    BATCH = "orchestrator.run_batch"  # several short experiments of one sweep and queue
    POLL = "orchestrator.poll_quantum_task"
    OPTIMIZE = "orchestrator.optimize"


class Lifecycle(StrEnum):
    """A sweep's state (``meta.state``); the Lua scripts in :mod:`orchestrator.store` use the same values."""

    RUNNING = "running"
    PAUSED = "paused"
    CANCELLING = "cancelling"  # no new experiments start; closes once nothing runs
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


ACTIVE_STATES = frozenset({Lifecycle.RUNNING, Lifecycle.PAUSED})
FINAL_STATES = frozenset({Lifecycle.COMPLETED, Lifecycle.CANCELLED, Lifecycle.TIMED_OUT})
#: states in which no experiment may start
STOPPED_STATES = frozenset({Lifecycle.CANCELLING, Lifecycle.CANCELLED, Lifecycle.TIMED_OUT})


class Claim(StrEnum):
    """What a worker's claim of an experiment found (see ``SweepState.claim``)."""

    RUN = "run"
    LEASED = "leased"  # another delivery holds the lease: look again later
    DONE = "already-done"
    CANCELLED = "cancelled"
    UNKNOWN_SWEEP = "unknown-sweep"


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def kwargs(self) -> dict[str, Any]:
        """The task's keyword arguments: defaults left out, so messages stay small."""
        return self.model_dump(mode="json", exclude_defaults=True)

    @classmethod
    def of(cls, kwargs: dict[str, Any]) -> Self:
        return cls.model_validate(kwargs)


class RunMessage(_Message):
    """``Task.RUN``: one experiment. It *is* the frozen :class:`Experiment` the coordinator planned."""

    experiment: Experiment

    @property
    def sweep_id(self) -> str:
        return self.experiment.sweep_id

    def kwargs(self) -> dict[str, Any]:
        return self.experiment.model_dump(mode="json", exclude_defaults=True)

    @classmethod
    def of(cls, kwargs: dict[str, Any]) -> RunMessage:
        return cls(experiment=Experiment.model_validate(kwargs))


class BatchMessage(_Message):
    """``Task.BATCH``: several short experiments of one sweep and queue.

    Members travel without the sweep and resource they share with the batch.
    """

    sweep_id: str
    queue: str
    experiments: tuple[Experiment, ...]

    def kwargs(self) -> dict[str, Any]:
        shared = {"sweep_id", "resource"}
        return {
            "sweep_id": self.sweep_id,
            "queue": self.queue,
            "experiments": [
                e.model_dump(mode="json", exclude_defaults=True, exclude=shared) for e in self.experiments
            ],
        }

    @classmethod
    def of(cls, kwargs: dict[str, Any]) -> BatchMessage:
        sweep_id, queue = kwargs["sweep_id"], kwargs["queue"]
        return cls(
            sweep_id=sweep_id,
            queue=queue,
            experiments=tuple(
                Experiment.model_validate({**e, "sweep_id": sweep_id, "resource": queue})
                for e in kwargs["experiments"]
            ),
        )


class PollMessage(_Message):
    """``Task.POLL``: look at a managed quantum task once; re-sent with a countdown until it ends."""

    experiment: Experiment
    task_arn: str
    attempt: int = 1  # the delivery attempt that submitted it

    @property
    def sweep_id(self) -> str:
        return self.experiment.sweep_id

    def kwargs(self) -> dict[str, Any]:
        return {
            **self.experiment.model_dump(mode="json", exclude_defaults=True),
            "task_arn": self.task_arn,
            "attempt": self.attempt,
        }

    @classmethod
    def of(cls, kwargs: dict[str, Any]) -> PollMessage:
        fields = dict(kwargs)
        task_arn, attempt = fields.pop("task_arn"), fields.pop("attempt", 1)
        return cls(experiment=Experiment.model_validate(fields), task_arn=task_arn, attempt=attempt)


class OptimizeMessage(_Message):
    """``Task.OPTIMIZE`` (beat, ``control`` queue): refit one sweep, or every adaptive sweep."""

    sweep_id: str | None = None


Message = RunMessage | BatchMessage | PollMessage | OptimizeMessage
_MODELS: dict[str, type[Message]] = {
    Task.RUN: RunMessage,
    Task.BATCH: BatchMessage,
    Task.POLL: PollMessage,
    Task.OPTIMIZE: OptimizeMessage,
}


def message_of(task: str, kwargs: Any) -> Message | None:
    """The message a task's keyword arguments carry, read back from the broker.

    Args:
        task: the task name the message was sent to.
        kwargs: its keyword arguments, as they travelled.

    Returns:
        The task's message model, or None if the task is not one of ours or the arguments do
        not make its model.
    """
    model = _MODELS.get(task)
    if model is None or not isinstance(kwargs, dict):
        return None
    try:
        return model.of(kwargs)
    except (ValidationError, KeyError, TypeError):
        return None


__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "QUEUES",
    "RESOURCE_QUEUES",
    "STOPPED_STATES",
    "BatchMessage",
    "Claim",
    "Lifecycle",
    "Message",
    "OptimizeMessage",
    "PollMessage",
    "Queue",
    "RunMessage",
    "Task",
    "message_of",
]
