"""Circuits on Braket's local simulator (``local:sv``, ``local:dm`` with noise models): free, here.

The simulation runs on the engines ``braket.devices.LocalSimulator`` delegates to
(``braket.default_simulator``'s state-vector and density-matrix simulators). Calling them
directly keeps the schema-level result, which is what gets stored when a managed task fails over
to the local simulator and its result must travel through Redis as JSON.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from adapters.simulator import (
    LOCAL_DM,
    LOCAL_SV,
    as_quantum_task_result,
    as_task_spec,
    circuit_needs,
    run_local,
)
from core.errors import InputError, classify
from core.models import Experiment, ExperimentResult, ExperimentStatus
from orchestrator.braket.programs import (
    CircuitSource,
    IExperimentExecutor,
    Program,
    probability_metrics,
    shots_of,
)


class BraketLocalExecutor(IExperimentExecutor):
    """Runs circuit experiments on the local simulator.

    Args:
        source: the circuit project's ``build`` / ``analyze``.
        device: ``local:sv`` or ``local:dm``.
        noise_model: a Braket ``NoiseModel`` for ``local:dm``.
        shots_param: the parameter holding the shot count.
        default_shots: shots when the parameters name none.
    """

    def __init__(
        self,
        source: CircuitSource,
        *,
        device: str = LOCAL_SV,
        noise_model: Any | None = None,
        shots_param: str = "shots",
        default_shots: int = 1000,
    ) -> None:
        if device not in (LOCAL_SV, LOCAL_DM):
            raise InputError(f"unknown local device '{device}'; use local:sv or local:dm", field="device")
        self.source, self.device, self.noise_model = source, device, noise_model
        self.shots_param, self.default_shots = shots_param, default_shots

    def run_program(self, program: Program, shots: int, device: str | None = None) -> Any:
        """``device_runner`` hook for the circuit adapter: run and return the SDK result object."""
        return as_quantum_task_result(
            run_local(program, shots, device or self.device, noise_model=self.noise_model)
        )

    def execute(self, experiment: Experiment) -> ExperimentResult:
        started = time.perf_counter()
        params = dict(experiment.parameters)
        try:
            shots = shots_of(experiment, shots_param=self.shots_param, default=self.default_shots)
            result = self.run_program(self.source.build(params), shots, experiment.device or self.device)
            # A project without ``analyze`` (the adapter passes None back) gets bitstring probabilities.
            metrics = self.source.analyze(result, params)
            metrics = probability_metrics(result) if metrics is None else metrics
            status, error, error_class = ExperimentStatus.COMPLETED, None, None
        except InputError:
            raise  # bad input is the caller's to report (exit 2), not a failed run
        except Exception as exc:  # noqa: BLE001 - classified and recorded on the result
            metrics, status, error, error_class = {}, ExperimentStatus.FAILED, str(exc), classify(exc)
        return ExperimentResult.of(
            experiment,
            parameters=params,  # what the run was given
            metrics=metrics,
            execution_time=time.perf_counter() - started,
            cost=0.0,
            status=status,
            error_message=error,
            error_class=error_class,
            device=experiment.device or self.device,
        )

    def estimate_duration(self, experiment: Experiment) -> timedelta:
        # State-vector cost doubles per qubit; a 20-qubit circuit takes about a second here.
        needs = circuit_needs(as_task_spec(self.source.build(dict(experiment.parameters)))[0])
        return timedelta(seconds=0.01 + 1e-6 * 2**needs.qubits * max(needs.gate_count, 1) / 20)

    def estimate_cost(self, experiment: Experiment) -> float:
        return 0.0
