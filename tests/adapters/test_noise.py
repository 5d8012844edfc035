"""``noise: device`` in a circuit run: the calibration's channels, placed where the fake QPUs put
them (``tests/support/fake_noise.py``), on local:dm and in the program sent to DM1."""

from __future__ import annotations

import re
from typing import Any

import pytest
from braket.circuits import Circuit
from braket.circuits.serialization import IRType

from adapters import adapt_project
from adapters.noise import noisy_program, with_noise
from core.errors import ConfigurationError
from core.project import Calibration, ProjectSpec
from tests.support import fake_noise
from tests.support.auto_device import GHZ

CAL = Calibration(
    device="arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet", one_qubit=0.99, two_qubit=0.96, readout=0.9
)
FAKE = fake_noise.Calibration(one_qubit=CAL.one_qubit, two_qubit=CAL.two_qubit, readout=CAL.readout)
_NUMBER = re.compile(r"\(([0-9.e+-]+)\)")


def _qasm(circuit: Circuit) -> str:
    return circuit.to_ir(IRType.OPENQASM).source


def _rounded(source: str) -> list[str]:
    """The program's lines, each channel's probability printed alike (the SDK prints 17 digits,
    the fake 10). Readout flips and measurements at the end commute, and result types are taken
    from the final state wherever their pragma stands: each run of those lines is sorted."""
    lines = [
        _NUMBER.sub(lambda m: f"({float(m.group(1)):.8g})", line) for line in source.strip().splitlines()
    ]
    out: list[str] = []
    run: list[str] = []
    for line in lines:
        if "bit_flip" in line or "measure" in line or "braket result" in line:
            run.append(line)
            continue
        out += sorted(run) + [line]
        run = []
    return out + sorted(run)


@pytest.mark.parametrize(
    "circuit",
    [
        Circuit().h(0).cnot(0, 1),  # Bell: measured at the end by the SDK
        Circuit().h(0).cnot(0, 1).cnot(1, 2).measure(0).measure(2),  # measures some qubits itself
        Circuit().h(0).cnot(0, 1).probability(),  # a result type: readout noise at the end
        Circuit().rx(0, 0.3).ccnot(0, 1, 2).swap(1, 2),  # a three-qubit gate: each qubit depolarizes
        Circuit().add_verbatim_box(Circuit().h(0).cnot(0, 1)).cz(0, 1),  # no noise inside the box
    ],
)
def test_the_channels_are_where_the_fake_qpu_puts_them(circuit: Circuit) -> None:
    assert _rounded(_qasm(with_noise(circuit, CAL))) == _rounded(fake_noise.noisy(_qasm(circuit), FAKE))


def test_probabilities_follow_the_average_gate_fidelity_of_braket_channels() -> None:
    noisy = _qasm(with_noise(Circuit().h(0).cnot(0, 1), CAL))
    channels = [(name, float(p)) for name, p in re.findall(r"noise (\w+)\(([^)]+)\)", noisy)]
    assert channels == [
        ("depolarizing", pytest.approx(0.015)),  # 1.5 (1 - 0.99)
        ("two_qubit_depolarizing", pytest.approx(0.05)),  # 1.25 (1 - 0.96)
        ("bit_flip", pytest.approx(0.1)),  # 1 - 0.9, before each measurement
        ("bit_flip", pytest.approx(0.1)),
    ]


def test_an_openqasm_program_gets_the_same_noise_with_its_inputs_bound() -> None:
    source = "OPENQASM 3.0;\ninput float theta;\nqubit[2] q;\nrx(theta) q[0];\ncnot q[0], q[1];\n"
    program, inputs = noisy_program(source, {"theta": 0.5}, CAL)
    expected = with_noise(Circuit().rx(0, 0.5).cnot(0, 1), CAL)
    assert inputs == {} and _rounded(_qasm(program)) == _rounded(_qasm(expected))


def _ghz(device: str, noise: Calibration | None) -> Any:
    spec = ProjectSpec(
        name="ghz",
        path=GHZ,
        device=device,
        circuit={"build": "ghz:build", "analyze": "ghz:analyze"},
        noise=noise,
    )
    return adapt_project(GHZ, spec)


def test_a_run_with_noise_on_local_dm_measures_the_noise_and_records_the_snapshot() -> None:
    params = {"n": 3, "shots": 2000}
    noisy = _ghz("local:dm", CAL).execute_with_parameters(params)
    ideal = _ghz("local:dm", None).execute_with_parameters(params)
    assert ideal.metrics["ghz_fidelity"] == 1.0
    # two CNOTs at p2 = 0.05 and three 10 % readouts: about a third of the shots leave {000, 111}
    assert 0.55 < noisy.metrics["ghz_fidelity"] < 0.8
    assert noisy.extra["noise"] == CAL.model_dump() and "noise" not in ideal.extra


def test_the_program_built_for_dm1_carries_the_channels() -> None:
    dm1 = "arn:aws:braket:::device/quantum-simulator/amazon/dm1"
    adapter = _ghz(dm1, CAL)
    adapter.device_runner = lambda program, shots, device: None  # built only, never run
    program, _ = adapter.build_program({"n": 2, "shots": 10})
    assert _qasm(program) == _qasm(with_noise(Circuit().h(0).cnot(0, 1), CAL))


def test_noise_on_the_state_vector_simulator_is_refused() -> None:
    result = _ghz("local:sv", CAL).execute_with_parameters({"n": 2, "shots": 10})
    assert result.status == "failed" and result.error_class == ConfigurationError.kind
    assert "density-matrix simulator, not local:sv" in (result.error_message or "")
