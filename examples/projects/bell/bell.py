"""A Bell-pair study on Braket's local density-matrix simulator.

A plain research script: it knows nothing of any orchestrator. ``run`` prepares a Bell pair,
applies depolarizing noise of strength ``noise`` to both qubits, samples ``shots`` times in the
computational basis, and reports the share of correlated outcomes, P(00) + P(11).

That share is a population proxy, not the state fidelity: a classical mixture of 00 and 11
scores 1 too. (The state fidelity needs measurements in other bases as well.)
"""

from __future__ import annotations

import math

from braket.circuits import Circuit, Noise
from braket.devices import LocalSimulator


def bell_circuit(noise: float) -> Circuit:
    circuit = Circuit().h(0).cnot(0, 1)
    if noise > 0:
        circuit.apply_gate_noise(Noise.Depolarizing(probability=noise))
    return circuit


def run(noise: float = 0.0, shots: int = 1000) -> dict[str, float]:
    device = LocalSimulator("braket_dm")
    result = device.run(bell_circuit(noise), shots=int(shots)).result()
    counts = result.measurement_counts
    p_correlated = (counts.get("00", 0) + counts.get("11", 0)) / shots
    stderr = math.sqrt(max(p_correlated * (1 - p_correlated), 1e-12) / shots)
    return {"p_correlated": p_correlated, "p_correlated_stderr": stderr, "shots": float(shots)}


if __name__ == "__main__":
    print(run(0.05, 2000))
