"""The devices the fake Braket service offers, with capabilities the real SDK parses.

Capabilities are built as JSON in Braket's schemas and checked with
``BraketSchemaBase.parse_raw_schema`` when a device is created, so ``AwsDevice(arn)`` in the real
SDK constructs exactly as it would against AWS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from braket.default_simulator import DensityMatrixSimulator, StateVectorSimulator
from braket.schema_common import BraketSchemaBase

from tests.support.fake_noise import Calibration

SV1 = "arn:aws:braket:::device/quantum-simulator/amazon/sv1"
DM1 = "arn:aws:braket:::device/quantum-simulator/amazon/dm1"
IONQ = "arn:aws:braket:us-east-1::device/qpu/ionq/Forte-1"
IQM = "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"

EVERYDAY = [{"executionDay": "Everyday", "windowStartHour": "00:00:00", "windowEndHour": "23:59:59"}]
_RESULT_TYPES = [
    {"name": n, "observables": ["x", "y", "z", "h", "i"], "minShots": 1, "maxShots": 100000}
    for n in ("Sample", "Expectation", "Variance")
] + [{"name": "Probability", "minShots": 1, "maxShots": 100000}]


@dataclass
class FakeDevice:
    """One device of the fake service; tests change ``status``, ``windows`` and ``extra_queue``.

    Attributes:
        arn / name / provider / device_type: as GetDevice reports them.
        backend: ``sv`` or ``dm``: which local simulator runs its tasks.
        qubits: qubit count.
        shots_range: (min, max) shots accepted.
        operations: OpenQASM gate names accepted.
        noise: accepts noise pragmas.
        connectivity: qubit -> neighbours (None: fully connected).
        status: ONLINE / OFFLINE / RETIRED.
        windows: execution windows (Braket JSON form).
        extra_queue: tasks of "other users" added to the reported queue depth.
        queue_delay: seconds a task of this device waits in QUEUED (None: the service default).
        calibration: a QPU's published gate and readout fidelities; its tasks are simulated with
            that noise (:mod:`tests.support.fake_noise`). None: ideal results.
    """

    arn: str
    name: str
    provider: str
    device_type: str
    backend: str
    qubits: int
    shots_range: tuple[int, int]
    operations: list[str]
    noise: bool = False
    connectivity: dict[int, list[int]] | None = None
    native_gates: list[str] = field(default_factory=list)
    status: str = "ONLINE"
    windows: list[dict[str, str]] = field(default_factory=lambda: list(EVERYDAY))
    extra_queue: int = 0
    queue_delay: float | None = None
    calibration: Calibration | None = None

    def capabilities(self) -> dict[str, Any]:
        """The ``deviceCapabilities`` document, validated against the SDK's schema."""
        caps = _simulator_caps(self) if self.device_type == "SIMULATOR" else _qpu_caps(self)
        BraketSchemaBase.parse_raw_schema(json.dumps(caps))  # fail here, not inside a test's SDK call
        return caps

    def summary(self) -> dict[str, str]:
        return {
            "deviceArn": self.arn,
            "deviceName": self.name,
            "providerName": self.provider,
            "deviceType": self.device_type,
            "deviceStatus": self.status,
        }


def _service(device: FakeDevice) -> dict[str, Any]:
    return {
        "braketSchemaHeader": {"name": "braket.device_schema.device_service_properties", "version": "1"},
        "executionWindows": device.windows,
        "shotsRange": list(device.shots_range),
        # The SDK polls at this interval in AwsQuantumTask.result(); keep tests quick.
        "getTaskPollIntervalMillis": 100,
    }


def _simulator_caps(device: FakeDevice) -> dict[str, Any]:
    sim = DensityMatrixSimulator() if device.backend == "dm" else StateVectorSimulator()
    caps = json.loads(sim.properties.json())
    caps["service"] = _service(device)
    caps["paradigm"]["qubitCount"] = device.qubits
    return caps


def _qpu_caps(device: FakeDevice) -> dict[str, Any]:
    module = "ionq" if device.provider == "IonQ" else "iqm"
    graph = device.connectivity
    provider = None
    if device.calibration is not None:
        pairs = sorted((q, n) for q, ns in (graph or {}).items() for n in ns)
        provider = (
            device.calibration.ionq() if module == "ionq" else device.calibration.iqm(pairs, device.qubits)
        )
    return {
        **({"provider": provider} if provider else {}),
        "braketSchemaHeader": {
            "name": f"braket.device_schema.{module}.{module}_device_capabilities",
            "version": "1",
        },
        "service": _service(device),
        "action": {
            "braket.ir.openqasm.program": {
                "actionType": "braket.ir.openqasm.program",
                "version": ["1"],
                "supportedOperations": device.operations,
                "supportedResultTypes": _RESULT_TYPES,
                "supportedPragmas": ["verbatim"],
                "supportPhysicalQubits": True,
                "disabledQubitRewiringSupported": True,
            }
        },
        "paradigm": {
            "braketSchemaHeader": {
                "name": "braket.device_schema.gate_model_qpu_paradigm_properties",
                "version": "1",
            },
            "qubitCount": device.qubits,
            "nativeGateSet": device.native_gates,
            "connectivity": {
                "fullyConnected": graph is None,
                "connectivityGraph": {str(q): [str(n) for n in ns] for q, ns in (graph or {}).items()},
            },
        },
        "deviceParameters": {},
    }


def _square_lattice(rows: int, cols: int) -> dict[int, list[int]]:
    graph: dict[int, list[int]] = {}
    for r in range(rows):
        for c in range(cols):
            q = r * cols + c
            graph[q] = [
                n
                for n in ((q + 1) if c + 1 < cols else None, (q + cols) if r + 1 < rows else None)
                if n is not None
            ]
    return graph


_SIM_OPS = (
    "h x y z s si t ti v vi rx ry rz cnot cz cy swap phaseshift cphaseshift xx yy zz ccnot iswap i unitary"
).split()


def default_devices() -> dict[str, FakeDevice]:
    """SV1, DM1, an IonQ-like (fully connected) and an IQM-like (square lattice) QPU."""
    devices = [
        FakeDevice(SV1, "SV1", "Amazon Braket", "SIMULATOR", "sv", 34, (0, 100_000), _SIM_OPS),
        FakeDevice(DM1, "DM1", "Amazon Braket", "SIMULATOR", "dm", 17, (0, 100_000), _SIM_OPS, noise=True),
        FakeDevice(
            IONQ,
            "Forte 1",
            "IonQ",
            "QPU",
            "sv",
            36,
            (1, 5_000),
            "x y z rx ry rz h cnot s si t ti v vi xx yy zz swap".split(),
            native_gates=["gpi", "gpi2", "zz"],
            calibration=Calibration(one_qubit=0.9998, two_qubit=0.995, readout=0.995),
        ),
        FakeDevice(
            IQM,
            "Garnet",
            "IQM",
            "QPU",
            "sv",
            20,
            (1, 20_000),
            "ccnot cnot cphaseshift cz h i phaseshift rx ry rz s si swap t ti x y z prx".split(),
            connectivity=_square_lattice(4, 5),
            native_gates=["cz", "prx"],
            calibration=Calibration(one_qubit=0.999, two_qubit=0.99, readout=0.985),
        ),
    ]
    return {d.arn: d for d in devices}
