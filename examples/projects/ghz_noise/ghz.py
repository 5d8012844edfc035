"""GHZ-state fidelity under depolarizing noise, estimated by an echo on a density-matrix simulator.

``build`` prepares an n-qubit GHZ state with a depolarizing channel of strength ``noise`` after
every gate, then undoes the preparation with the ideal (noise-free) inverse circuit. The
probability of returning to |0...0> is then exactly the fidelity <GHZ|rho|GHZ> of the noisy
state, so ``analyze`` estimates it from the shots. Needs a simulator with noise (local:dm).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from braket.circuits import Circuit, Noise


def ghz_preparation(n_qubits: int) -> Circuit:
    circuit = Circuit().h(0)
    for q in range(n_qubits - 1):
        circuit.cnot(q, q + 1)
    return circuit


def build(params: Mapping[str, Any]) -> Circuit:
    n, noise = int(params["n_qubits"]), float(params["noise"])
    if n < 2:
        raise ValueError("a GHZ state needs at least 2 qubits")
    circuit = ghz_preparation(n)
    # applied even at noise 0, so every point of a sweep runs the same kind of circuit
    circuit.apply_gate_noise(Noise.Depolarizing(probability=noise))
    echo = Circuit()
    for q in reversed(range(n - 1)):
        echo.cnot(q, q + 1)
    echo.h(0)
    return circuit.add_circuit(echo)


def analyze(result: Any, params: Mapping[str, Any]) -> dict[str, float]:
    counts = result.measurement_counts
    shots = sum(counts.values())
    fidelity = counts.get("0" * int(params["n_qubits"]), 0) / shots
    return {"fidelity": fidelity, "infidelity": 1 - fidelity}
