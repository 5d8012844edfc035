"""``noise: device``: a QPU's published calibration, simulated as channels in the circuit.

After each gate a depolarizing channel of that gate's infidelity (one-qubit ``Depolarizing`` on
each qubit of a one-qubit gate, ``TwoQubitDepolarizing`` on the pair of a two-qubit gate), and
before each measurement (at the end when the circuit measures nothing itself) a bit flip of the
readout error. Braket's channels of probability p have average gate fidelity 1 - 2p/3 (one
qubit) and 1 - 4p/5 (two qubits), hence p1 = 1.5 (1 - F1) and p2 = 1.25 (1 - F2).

This is the model the fake Braket service's QPUs sample from (``tests/support/fake_noise.py``),
so a ``local:dm`` rung reproduces a fake QPU's distribution. The channels go into the circuit
itself, not a ``NoiseModel``: the same noisy circuit then runs on ``local:dm`` and is submitted to
DM1, and a gate inside a verbatim box (where no pragma may go) keeps its place without noise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.errors import ConfigurationError

if TYPE_CHECKING:
    from braket.circuits import Circuit

    from core.project import Calibration


def probabilities(cal: Calibration) -> tuple[float, float, float]:
    """``(p1, p2, flip)``: the depolarizing probabilities and the readout bit-flip probability."""
    return 1.5 * (1 - cal.one_qubit), 1.25 * (1 - cal.two_qubit), 1 - cal.readout


def with_noise(circuit: Circuit, cal: Calibration) -> Circuit:
    """``circuit`` with ``cal``'s channels after its gates and before its measurements.

    Result types are kept (computed on the noisy state, readout noise included).
    """
    from braket.circuits import Circuit, Gate, Instruction
    from braket.circuits.compiler_directives import EndVerbatimBox, StartVerbatimBox
    from braket.circuits.measure import Measure
    from braket.circuits.noises import BitFlip, Depolarizing, TwoQubitDepolarizing

    p1, p2, flip = probabilities(cal)
    noisy, verbatim, measured = Circuit(), 0, False
    for ins in circuit.instructions:
        op = ins.operator
        if isinstance(op, Measure):
            measured = True
            noisy.add_instruction(Instruction(BitFlip(flip), ins.target))
        noisy.add_instruction(ins)
        verbatim += isinstance(op, StartVerbatimBox) - isinstance(op, EndVerbatimBox)
        if isinstance(op, Gate) and not verbatim:
            qubits = [*ins.control, *ins.target]
            if len(qubits) == 2:
                noisy.add_instruction(Instruction(TwoQubitDepolarizing(p2), qubits))
            else:
                for q in qubits:
                    noisy.add_instruction(Instruction(Depolarizing(p1), q))
    if not measured:
        for q in sorted(circuit.qubits):
            noisy.add_instruction(Instruction(BitFlip(flip), q))
    for result_type in circuit.result_types:
        noisy.add_result_type(result_type)
    return noisy


def noisy_program(program: Any, inputs: dict[str, Any], cal: Calibration) -> tuple[Any, dict[str, Any]]:
    """``(program, inputs)`` with ``cal``'s noise: a Circuit gets the channels; OpenQASM is read
    into a Circuit first (its inputs bound, so none are left).

    Raises:
        ConfigurationError: the OpenQASM program is one the Braket SDK cannot read as a circuit.
    """
    from braket.circuits import Circuit

    if not isinstance(program, Circuit):
        source = getattr(program, "source", program)
        bound = {**(getattr(program, "inputs", None) or {}), **inputs}
        try:
            program, inputs = Circuit.from_ir(source, inputs=bound or None), {}
        except Exception as exc:  # noqa: BLE001 - the SDK's parser raises many kinds
            raise ConfigurationError(
                f"noise: device adds the QPU's noise to the circuit, and the Braket SDK cannot read "
                f"this OpenQASM program as one ({exc}); build a braket Circuit instead"
            ) from exc
    return with_noise(program, cal), inputs
