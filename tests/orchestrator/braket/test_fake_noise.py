"""The fake Braket service's QPUs are noisy, as their published calibration says, and its
simulators are not: through the real SDK over HTTP, results in moto's S3."""

from __future__ import annotations

from braket.aws import AwsDevice
from braket.circuits import Circuit

from tests.support.fake_devices import IONQ, IQM, SV1, default_devices
from tests.support.fake_noise import Calibration, noisy


def _ghz(n: int) -> Circuit:
    circuit = Circuit().h(0)
    for q in range(1, n):
        circuit.cnot(q - 1, q)
    return circuit


def _wrong(device: str, env, shots: int = 4000) -> float:
    """The share of GHZ-3 shots that are neither 000 nor 111."""
    counts = AwsDevice(device).run(_ghz(3), (env.bucket, "noise"), shots=shots).result().measurement_counts
    return 1 - (counts.get("000", 0) + counts.get("111", 0)) / shots


def test_qpus_publish_their_calibration_in_the_device_description(braket_env) -> None:
    ionq = AwsDevice(IONQ).properties.provider
    assert ionq.fidelity["2Q"]["mean"] == 0.995 and ionq.fidelity["spam"]["mean"] == 0.995
    iqm = AwsDevice(IQM).properties.provider.properties
    assert iqm["one_qubit"]["0"]["fRO"] == 0.985 and iqm["two_qubit"]["0-1"]["fCZ"] == 0.99


def test_a_qpu_samples_its_noise_and_a_simulator_does_not(braket_env) -> None:
    cal = default_devices()[IQM].calibration
    assert cal is not None
    # two CNOTs of depolarizing and three readouts: about 8 % of shots leave {000, 111}
    expected = 1 - (1 - 0.8 * cal.p2) ** 2 * ((1 - cal.flip) ** 3 + cal.flip**3)
    assert 0.5 * expected < _wrong(IQM, braket_env) < 1.5 * expected
    assert 0 < _wrong(IONQ, braket_env) < _wrong(IQM, braket_env)  # IonQ's calibration is better
    assert _wrong(SV1, braket_env) == 0.0  # the ideal circuit


def test_channels_go_after_each_gate_and_before_each_measurement() -> None:
    source = "OPENQASM 3.0;\nbit[2] b;\nqubit[2] q;\nh q[0];\ncnot q[0], q[1];\nb = measure q;\n"
    lines = noisy(source, Calibration(one_qubit=0.99, two_qubit=0.96, readout=0.9)).splitlines()
    assert lines[3:] == [
        "h q[0];",
        "#pragma braket noise depolarizing(0.015) q[0]",
        "cnot q[0], q[1];",
        "#pragma braket noise two_qubit_depolarizing(0.05) q[0], q[1]",
        "#pragma braket noise bit_flip(0.1) q[0]",
        "#pragma braket noise bit_flip(0.1) q[1]",
        "b = measure q;",
    ]
