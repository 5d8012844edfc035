"""Braket's local simulator, the device a circuit project runs on unless a worker injects another.

What a circuit asks of a device (:func:`circuit_needs`), its OpenQASM form, and the free local
simulators (``local:sv``, ``local:dm`` with noise). The simulation runs on the engines
``braket.devices.LocalSimulator`` delegates to (``braket.default_simulator``'s state-vector and
density-matrix simulators). Calling them directly keeps the schema-level result, which is what
gets stored when a managed task fails over to the local simulator and its result must travel
through Redis as JSON. The Braket executors in ``orchestrator.braket`` share all of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core.errors import InputError

#: what a circuit project's ``build`` may return: a Circuit, OpenQASM text or program, or (that, inputs)
Program = Any

LOCAL_SV = "local:sv"
LOCAL_DM = "local:dm"
# Practical limits on a laptop (DESIGN.md): ~25 qubits state vector, ~12 density matrix.
LOCAL_DEVICE_QUBITS = {LOCAL_SV: 25, LOCAL_DM: 12}


@dataclass(frozen=True)
class CircuitNeeds:
    """What a circuit asks of a device.

    Attributes:
        qubits: distinct qubits used (what a device with rewiring needs).
        max_index: highest qubit index + 1 (what a device without rewiring needs).
        gates: gate names, lower-case.
        noise: noise channel names, lower-case (non-empty -> a noise simulator).
        pairs: qubit pairs that interact in two-qubit gates.
        gate_count: number of gate instructions.
    """

    qubits: int
    max_index: int
    gates: frozenset[str]
    noise: frozenset[str]
    pairs: frozenset[tuple[int, int]]
    gate_count: int


_QASM_REGISTER = re.compile(r"^\s*qubit\[(\d+)\]\s+\w+\s*;", re.M)
_QASM_PHYSICAL = re.compile(r"\$(\d+)")
_QASM_GATE = re.compile(
    r"^\s*([A-Za-z_]\w*)\s*(?:\([^)]*\))?\s+((?:\w+\[\d+\]|\$\d+)(?:\s*,\s*(?:\w+\[\d+\]|\$\d+))*)\s*;", re.M
)
_QASM_NOISE = re.compile(r"#pragma\s+braket\s+noise\s+(\w+)")
_QASM_NOT_GATES = {"measure", "reset", "barrier", "bit", "qubit", "input", "output", "let", "include"}


def circuit_needs(circuit: Any) -> CircuitNeeds:
    """Read the needs of a Braket ``Circuit`` or an OpenQASM program (object with ``source``, or text)."""
    from braket.circuits import Circuit, Noise

    if isinstance(circuit, Circuit):
        gates, noise, pairs, count = set(), set(), set(), 0
        for ins in circuit.instructions:
            name = ins.operator.name.lower()
            if isinstance(ins.operator, Noise):
                noise.add(name)
                continue
            gates.add(name)
            count += 1
            qubits = [int(q) for q in (*ins.control, *ins.target)]
            if len(qubits) == 2:
                pairs.add((min(qubits), max(qubits)))
        indices = [int(q) for q in circuit.qubits]
        return CircuitNeeds(
            len(indices),
            max(indices, default=-1) + 1,
            frozenset(gates),
            frozenset(noise),
            frozenset(pairs),
            count,
        )
    source = getattr(circuit, "source", circuit)
    if not isinstance(source, str):
        raise InputError(
            f"cannot read a circuit from {type(circuit).__name__}; pass a braket Circuit or "
            f"an OpenQASM program",
            field="circuit",
        )
    return _qasm_needs(source)


def _qasm_needs(source: str) -> CircuitNeeds:
    declared = sum(int(n) for n in _QASM_REGISTER.findall(source))
    physical = [int(n) for n in _QASM_PHYSICAL.findall(source)]
    width = max(declared, max(physical, default=-1) + 1)
    gates, pairs, count = set(), set(), 0
    for name, operands in _QASM_GATE.findall(source):
        if name.lower() in _QASM_NOT_GATES:
            continue
        gates.add(name.lower())
        count += 1
        qubits = [int(m) for m in re.findall(r"(?:\[|\$)(\d+)", operands)]
        if len(qubits) == 2:
            pairs.add((min(qubits), max(qubits)))
    return CircuitNeeds(
        width,
        width,
        frozenset(gates),
        frozenset(n.lower() for n in _QASM_NOISE.findall(source)),
        frozenset(pairs),
        count,
    )


def as_task_spec(program: Program, inputs: dict[str, float] | None = None) -> tuple[Any, dict[str, float]]:
    """Normalize what ``build`` returned into (Circuit | OpenQASM Program, inputs).

    Raises:
        InputError: the value is not a circuit or OpenQASM program.
    """
    from braket.circuits import Circuit
    from braket.ir.openqasm import Program as OpenQASMProgram

    inputs = dict(inputs or {})
    if isinstance(program, tuple) and len(program) == 2 and isinstance(program[1], dict):
        program, extra = program
        inputs.update(extra)
    if isinstance(program, str):
        program = OpenQASMProgram(source=program)
    if not isinstance(program, (Circuit, OpenQASMProgram)):
        raise InputError(
            f"a circuit project must build a braket Circuit or OpenQASM text, got {type(program).__name__}",
            field="circuit.build",
        )
    return program, inputs


def to_openqasm(program: Any, inputs: dict[str, float]) -> Any:
    """The OpenQASM ``Program`` a device runs for (Circuit | Program, inputs)."""
    from braket.circuits import Circuit
    from braket.circuits.serialization import IRType
    from braket.ir.openqasm import Program as OpenQASMProgram

    if isinstance(program, Circuit):
        program = program.to_ir(ir_type=IRType.OPENQASM)
    merged = {**(program.inputs or {}), **inputs}
    return OpenQASMProgram(source=program.source, inputs=merged or None)


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
