"""The fake QPUs' noise: their published calibration, turned into channels in the program.

A fake QPU publishes one- and two-qubit gate fidelities and a readout fidelity in its device
description (IonQ's ``provider.fidelity``, IQM's ``provider.properties``), as the real ones do. Its
tasks then run on the density-matrix simulator with, after each gate, a depolarizing channel of
that gate's infidelity, and before each measurement a bit flip of the readout error: results a
benchmark can tell apart from a noiseless simulator's.

Average gate fidelity F of a depolarizing channel of probability p: one qubit F = 1 - 2p/3,
two qubits F = 1 - 4p/5 (Braket's ``Depolarizing`` / ``TwoQubitDepolarizing``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: the density matrix of more qubits is too large for a test machine: such tasks run noiselessly
MAX_NOISY_QUBITS = 10


@dataclass(frozen=True)
class Calibration:
    """A QPU's published averages.

    Attributes:
        one_qubit: average single-qubit gate fidelity.
        two_qubit: average two-qubit gate fidelity.
        readout: probability a qubit is read as prepared (IonQ's "spam").
    """

    one_qubit: float
    two_qubit: float
    readout: float

    @property
    def p1(self) -> float:
        return 1.5 * (1 - self.one_qubit)

    @property
    def p2(self) -> float:
        return 1.25 * (1 - self.two_qubit)

    @property
    def flip(self) -> float:
        return 1 - self.readout

    def ionq(self) -> dict[str, Any]:
        """IonQ's ``provider`` section."""
        return {
            "braketSchemaHeader": {
                "name": "braket.device_schema.ionq.ionq_provider_properties",
                "version": "1",
            },
            "fidelity": {
                "1Q": {"mean": self.one_qubit},
                "2Q": {"mean": self.two_qubit},
                "spam": {"mean": self.readout},
            },
            "timing": {
                "T1": 10.0,
                "T2": 1.0,
                "1Q": 1.1e-05,
                "2Q": 2.1e-04,
                "readout": 1.75e-04,
                "reset": 3.5e-05,
            },
        }

    def iqm(self, pairs: list[tuple[int, int]], qubits: int) -> dict[str, Any]:
        """IQM's ``provider`` section: per qubit and per coupled pair (all alike here)."""
        return {
            "braketSchemaHeader": {
                "name": "braket.device_schema.iqm.iqm_provider_properties",
                "version": "1",
            },
            "properties": {
                "one_qubit": {
                    str(q): {"f1Q_simultaneous_RB": self.one_qubit, "fRO": self.readout}
                    for q in range(qubits)
                },
                "two_qubit": {f"{a}-{b}": {"fCZ": self.two_qubit} for a, b in pairs},
            },
        }


_OPERAND = r"(?:\w+\[\d+\]|\$\d+)"
_GATE = re.compile(rf"^\s*([A-Za-z_]\w*)\s*(?:\([^)]*\))?\s+({_OPERAND}(?:\s*,\s*{_OPERAND})*)\s*;\s*$")
_MEASURE = re.compile(r"^\s*(?:[\w\[\]]+\s*=\s*)?measure\s+([\w\[\]$]+)\s*;")
_REGISTER = re.compile(r"^\s*qubit\[(\d+)\]\s+(\w+)\s*;")
_NOT_GATES = {"measure", "reset", "barrier", "bit", "qubit", "input", "output", "let", "include", "gate"}


def noisy(source: str, cal: Calibration) -> str:
    """``source`` (OpenQASM 3) with the calibration's channels after its gates and before its
    measurements. Gates inside a verbatim ``box`` are left as they are (no pragma may go there)."""
    out: list[str] = []
    registers: dict[str, int] = {}
    physical: set[str] = set()
    depth, measured = 0, False
    for line in source.splitlines():
        if match := _REGISTER.match(line):
            registers[match.group(2)] = int(match.group(1))
        physical.update(re.findall(r"\$\d+", line))
        if depth == 0 and (match := _MEASURE.match(line)):
            measured = True
            out += [_pragma("bit_flip", cal.flip, q) for q in _expand(match.group(1), registers)]
        out.append(line)
        opened = line.count("{") - line.count("}")
        if depth == 0 and opened <= 0 and (match := _GATE.match(line)) and match.group(1) not in _NOT_GATES:
            operands = [o.strip() for o in match.group(2).split(",")]
            if len(operands) == 2:
                out.append(_pragma("two_qubit_depolarizing", cal.p2, ", ".join(operands)))
            else:
                out += [_pragma("depolarizing", cal.p1, q) for q in operands]
        depth += opened
    if not measured:  # every qubit is measured at the end
        qubits = [f"{name}[{i}]" for name, n in registers.items() for i in range(n)] or sorted(physical)
        out += [_pragma("bit_flip", cal.flip, q) for q in qubits]
    return "\n".join(out) + "\n"


def _expand(operand: str, registers: dict[str, int]) -> list[str]:
    return [f"{operand}[{i}]" for i in range(registers[operand])] if operand in registers else [operand]


def _pragma(channel: str, p: float, operands: str) -> str:
    return f"#pragma braket noise {channel}({p:.10g}) {operands}"
