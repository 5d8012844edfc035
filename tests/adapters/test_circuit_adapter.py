"""Circuit projects: built by the project, run on the device the sweep names, analysed by the project."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters import ProjectAdapter, adapt_project
from adapters.circuit import CircuitAdapter
from core.models import ExperimentStatus
from core.project import ProjectSpec

CIRCUITS = '''
from braket.circuits import Circuit, FreeParameter, Noise


def bell(params):
    return Circuit().h(0).cnot(0, 1)


def noisy_bell(params):
    c = Circuit().h(0).cnot(0, 1)
    c.apply_gate_noise(Noise.Depolarizing(probability=params["noise"]))
    return c


def qasm(params):
    return """OPENQASM 3.0;
qubit[2] q;
bit[2] c;
x q[0];
x q[1];
c = measure q;"""


def parametric(params):
    return Circuit().rx(0, FreeParameter("theta")), {"theta": params["angle"]}


def correlated(result, params):
    counts = result.measurement_counts
    return {"correlated": (counts.get("00", 0) + counts.get("11", 0)) / sum(counts.values()),
            "shots_seen": sum(counts.values())}
'''


@pytest.fixture
def circuits(make_project: Callable[..., Path]) -> Path:
    return make_project("circuits", {"circuits.py": CIRCUITS})


def circuit_adapter(root: Path, build: str, analyze: str | None = None, **fields: Any) -> ProjectAdapter:
    spec = ProjectSpec.model_validate(
        {"name": "circ", "path": str(root), "circuit": {"build": build, "analyze": analyze}, **fields}
    )
    return adapt_project(root, spec, device_runner=fields.pop("device_runner", None))


def test_build_and_analyze_on_the_state_vector_simulator(circuits: Path) -> None:
    adapter = circuit_adapter(circuits, "circuits:bell", "circuits:correlated")
    assert isinstance(adapter, CircuitAdapter)
    result = adapter.execute_with_parameters({"shots": 123})
    assert result.status == ExperimentStatus.COMPLETED, result.error_message
    assert result.metrics == {"correlated": 1.0, "shots_seen": 123.0}
    assert result.device == "local:sv" and result.extra["shots"] == 123


def test_noise_runs_on_the_density_matrix_simulator(circuits: Path) -> None:
    adapter = circuit_adapter(circuits, "circuits:noisy_bell", "circuits:correlated", device="local:dm")
    result = adapter.execute_with_parameters({"noise": 0.3, "shots": 2000})
    assert result.status == ExperimentStatus.COMPLETED, result.error_message
    assert 0.5 < result.metrics["correlated"] < 0.95 and result.device == "local:dm"


def test_noise_on_the_state_vector_simulator_says_use_dm(circuits: Path) -> None:
    result = circuit_adapter(circuits, "circuits:noisy_bell").execute_with_parameters({"noise": 0.1})
    assert result.error_class == "configuration"
    assert "local:dm" in result.error_message and "'circ'" in result.error_message


def test_openqasm_programs_and_default_analysis(circuits: Path) -> None:
    result = circuit_adapter(circuits, "circuits:qasm").execute_with_parameters({"shots": 50})
    assert result.metrics == {"p_11": 1.0}


def test_free_parameters_are_bound_from_inputs(circuits: Path) -> None:
    result = circuit_adapter(circuits, "circuits:parametric").execute_with_parameters(
        {"angle": 3.141592653589793, "shots": 100}
    )
    assert result.metrics == {"p_1": 1.0}


def test_default_shots_when_the_sweep_names_none(circuits: Path) -> None:
    adapter = circuit_adapter(circuits, "circuits:bell", "circuits:correlated")
    assert adapter.execute_with_parameters({}).metrics["shots_seen"] == 1000.0


ARN = "arn:aws:braket:::device/quantum-simulator/amazon/sv1"


def test_managed_device_without_a_runner_needs_a_braket_worker(circuits: Path) -> None:
    result = circuit_adapter(circuits, "circuits:bell", device=ARN).execute_with_parameters({"shots": 10})
    assert result.error_class == "configuration"
    assert "braket_sim" in result.error_message and "managed" in result.error_message


def test_managed_device_runs_through_the_injected_runner(circuits: Path) -> None:
    from braket.devices import LocalSimulator

    calls: list[tuple[Any, int, str]] = []

    def runner(program: Any, shots: int, device: str) -> Any:
        calls.append((program, shots, device))
        return LocalSimulator().run(program, shots=shots).result()  # stands in for AwsDevice(device)

    spec = ProjectSpec.model_validate(
        {
            "name": "circ",
            "path": str(circuits),
            "device": ARN,
            "resource": "braket_sim",
            "circuit": {"build": "circuits:parametric"},
        }
    )
    adapter = adapt_project(circuits, spec, device_runner=runner)
    result = adapter.execute_with_parameters({"angle": 3.141592653589793, "shots": 20})
    assert result.metrics == {"p_1": 1.0} and result.device == ARN and result.resource == "braket_sim"
    program, shots, device = calls[0]
    assert shots == 20 and device == ARN and not program.parameters  # bound before it left


def test_missing_build_function_is_named(circuits: Path) -> None:
    result = circuit_adapter(circuits, "circuits:buld").execute_with_parameters({})
    assert result.error_class == "configuration"
    assert "did you mean build" not in result.error_message and "circuit.build" in result.error_message


def test_circuit_projects_refuse_their_own_interpreter(circuits: Path) -> None:
    result = circuit_adapter(circuits, "circuits:bell", python="/usr/bin/python3").execute_with_parameters({})
    assert result.error_class == "configuration" and "worker's interpreter" in result.error_message
