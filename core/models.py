"""Data models shared by the coordinator, the workers, the adapters and the analysis.

Everything here crosses process boundaries as JSON, never as serialized Python objects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ExperimentStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    EARLY_STOPPED = "early_stopped"
    PARTIAL = "partial"  # a low-shot run kept while the optimizer decides: promote or stop
    CANCELLED = "cancelled"


TERMINAL = frozenset(
    {
        ExperimentStatus.COMPLETED,
        ExperimentStatus.FAILED,
        ExperimentStatus.EARLY_STOPPED,
        ExperimentStatus.CANCELLED,
    }
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Experiment(BaseModel):
    """One point of a sweep, for one project and one repeat."""

    model_config = ConfigDict(frozen=True)

    sweep_id: str
    experiment_id: str
    index: int = Field(description="position in the sweep's lazy enumeration")
    project: str
    parameters: dict[str, Any]
    repeat: int = 0
    resource: str = "local_cpu"
    device: str | None = None
    fidelity: int | None = Field(
        None, description="its rung on a fidelity ladder (0: the first); None outside ladders"
    )
    reproducibility_hash: str = ""
    seed: int | None = Field(
        None,
        description="this repeat's seed, derived from the sweep's: passed to an entry that takes `seed`",
    )
    code_version: str = Field(
        "", description="the project's code: the archive workers run (sha256:...), or a git/content hash"
    )
    added: bool = Field(False, description="a refinement point added by the optimizer")
    shot_fraction: float | None = Field(
        None, description="run at this share of its shots first (low fidelity)"
    )


class ExperimentResult(BaseModel):
    """The seed's result fields, plus where and how it ran."""

    experiment_id: str
    project_name: str
    parameters: dict[str, Any]
    metrics: dict[str, float] = Field(default_factory=dict)
    execution_time: float = 0.0
    cost: float | None = None
    status: ExperimentStatus = ExperimentStatus.COMPLETED
    error_message: str | None = None
    reproducibility_hash: str = ""
    seed: int | None = Field(None, description="the seed the run was given (see Experiment.seed)")
    code_version: str = Field("", description="the code that produced the row (see Experiment.code_version)")
    timestamp: datetime = Field(default_factory=utcnow)
    # orchestration context
    sweep_id: str = ""
    index: int = -1
    repeat: int = 0
    error_class: str | None = None
    attempt: int = 1
    worker_host: str = ""
    resource: str = "local_cpu"
    device: str | None = None
    fidelity: int | None = None
    added: bool = False
    log: str = Field("", description="tail of the project's captured stdout/stderr/logging")
    extra: dict[str, Any] = Field(default_factory=dict, description="adapter-specific details (JSON-able)")

    @classmethod
    def of(cls, experiment: Experiment, **fields: Any) -> ExperimentResult:
        """The result of a finished ``experiment``, with what it is filled in from it: id, project,
        parameters, sweep, index, repeat, resource, device, rung, code version, seed, reproducibility hash
        and whether the optimizer added it (so that no path, a stop or a failure included, leaves
        them out).

        Args:
            experiment: the experiment that ran (or was stopped, or failed before it ran).
            fields: how it ran: status, metrics, cost, attempt, host, ...; one of the fields above
                given here replaces the experiment's.
        """
        identity: dict[str, Any] = {
            "experiment_id": experiment.experiment_id,
            "project_name": experiment.project,
            "parameters": dict(experiment.parameters),
            "sweep_id": experiment.sweep_id,
            "index": experiment.index,
            "repeat": experiment.repeat,
            "resource": experiment.resource,
            "device": experiment.device,
            "fidelity": experiment.fidelity,
            "added": experiment.added,
            "code_version": experiment.code_version,
            "seed": experiment.seed,
            "reproducibility_hash": experiment.reproducibility_hash,
        }
        return cls(**(identity | fields))
