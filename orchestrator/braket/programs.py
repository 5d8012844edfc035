"""The seed's ``IExperimentExecutor`` and what circuit executors share.

An executor turns an ``Experiment`` into an ``ExperimentResult`` on one kind of resource. Circuit
executors get their circuit from a :class:`CircuitSource` (the circuit adapter's ``build`` and
``analyze``), so they know nothing of project files, and the adapter knows nothing of devices.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from adapters.simulator import Program
from core.errors import InputError
from core.models import Experiment, ExperimentResult

if TYPE_CHECKING:
    from braket.tasks import GateModelQuantumTaskResult


class IExperimentExecutor(ABC):
    """Runs experiments on one kind of resource (the seed's interface)."""

    @abstractmethod
    def execute(self, experiment: Experiment) -> ExperimentResult:
        """Run ``experiment`` to completion and return its result (failures included)."""

    @abstractmethod
    def estimate_duration(self, experiment: Experiment) -> timedelta:
        """Expected wall time of ``experiment`` on this resource, queueing included."""

    @abstractmethod
    def estimate_cost(self, experiment: Experiment) -> float:
        """Expected USD cost of ``experiment`` on this resource."""


@runtime_checkable
class CircuitSource(Protocol):
    """The two halves of a circuit project, as the circuit adapter provides them."""

    def build(self, parameters: dict[str, Any]) -> Program:
        """The circuit for ``parameters`` (optionally ``(circuit, inputs)`` for free parameters)."""

    def analyze(self, result: GateModelQuantumTaskResult, parameters: dict[str, Any]) -> dict[str, float]:
        """Metrics from a finished task's result."""


def probability_metrics(result: GateModelQuantumTaskResult) -> dict[str, float]:
    """Default metrics: the measured probability of each bitstring, as ``p_<bits>``."""
    return {f"p_{bits}": float(p) for bits, p in sorted(result.measurement_probabilities.items())}


def shots_of(experiment: Experiment, *, shots_param: str = "shots", default: int = 1000) -> int:
    """The experiment's shot count (``parameters[shots_param]``, else ``default``).

    Raises:
        InputError: shots is not a non-negative integer.
    """
    value = experiment.parameters.get(shots_param, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(
            f"shots must be a non-negative integer, got {value!r}", field=f"parameters.{shots_param}"
        )
    return value
