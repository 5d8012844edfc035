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

from orchestrator.braket.catalog import LOCAL_DEVICE_QUBITS, LOCAL_DM, LOCAL_SV
from orchestrator.braket.devices import circuit_needs
from orchestrator.braket.programs import (
    CircuitSource,
    IExperimentExecutor,
    Program,
    as_task_spec,
    probability_metrics,
    shots_of,
    to_openqasm,
)
from orchestrator.errors import InputError, classify
from orchestrator.models import Experiment, ExperimentResult, ExperimentStatus


def run_local(
    program: Program,
    shots: int,
    device: str = LOCAL_SV,
    *,
    inputs: dict[str, float] | None = None,
    noise_model: Any | None = None,
) -> Any:
    """Simulate ``program`` locally and return the schema ``GateModelTaskResult``.

    Args:
        program: a Circuit, OpenQASM text/program, or (one of those, inputs).
        shots: shots (0: exact results, needs result types).
        device: ``local:sv`` or ``local:dm``.
        inputs: values of free parameters.
        noise_model: a Braket ``NoiseModel`` applied to a Circuit (``local:dm`` only).

    Raises:
        InputError: unknown device, circuit too wide, noise on the state-vector simulator.
    """
    from braket.circuits import Circuit
    from braket.default_simulator import DensityMatrixSimulator, StateVectorSimulator

    if device not in (LOCAL_SV, LOCAL_DM):
        raise InputError(f"unknown local device '{device}'; use local:sv or local:dm", field="device")
    spec, inputs = as_task_spec(program, inputs)
    if noise_model is not None:
        if device != LOCAL_DM or not isinstance(spec, Circuit):
            raise InputError("a noise model needs a Circuit on local:dm", field="noise_model")
        spec = noise_model.apply(spec)
    needs = circuit_needs(spec)
    if needs.qubits > LOCAL_DEVICE_QUBITS[device]:
        raise InputError(
            f"{needs.qubits}-qubit circuit is too wide for {device} (at most "
            f"{LOCAL_DEVICE_QUBITS[device]}); use SV1 or a smaller circuit",
            field="device",
        )
    if needs.noise and device != LOCAL_DM:
        raise InputError("the circuit has noise channels; run it on local:dm", field="device")
    simulator = DensityMatrixSimulator() if device == LOCAL_DM else StateVectorSimulator()
    return simulator.run(to_openqasm(spec, inputs), shots=shots)


def as_quantum_task_result(raw: Any) -> Any:
    """The SDK's ``GateModelQuantumTaskResult`` for a schema result (or its JSON)."""
    from braket.task_result import GateModelTaskResult
    from braket.tasks import GateModelQuantumTaskResult

    if isinstance(raw, (str, bytes)):
        raw = GateModelTaskResult.parse_raw(raw)
    GateModelQuantumTaskResult.cast_result_types(raw)
    return GateModelQuantumTaskResult.from_object(raw)


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
        return ExperimentResult(
            experiment_id=experiment.experiment_id,
            project_name=experiment.project,
            parameters=params,
            metrics=metrics,
            execution_time=time.perf_counter() - started,
            cost=0.0,
            status=status,
            error_message=error,
            error_class=error_class,
            reproducibility_hash=experiment.reproducibility_hash,
            sweep_id=experiment.sweep_id,
            index=experiment.index,
            repeat=experiment.repeat,
            resource=experiment.resource,
            device=experiment.device or self.device,
            added=experiment.added,
        )

    def estimate_duration(self, experiment: Experiment) -> timedelta:
        # State-vector cost doubles per qubit; a 20-qubit circuit takes about a second here.
        needs = circuit_needs(as_task_spec(self.source.build(dict(experiment.parameters)))[0])
        return timedelta(seconds=0.01 + 1e-6 * 2**needs.qubits * max(needs.gate_count, 1) / 20)

    def estimate_cost(self, experiment: Experiment) -> float:
        return 0.0
