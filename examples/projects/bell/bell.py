"""A Bell-state fidelity study on Braket's local density-matrix simulator.

A plain research script: it knows nothing of any orchestrator. ``run`` prepares a Bell pair,
applies depolarizing noise of strength ``noise`` to both qubits, samples ``shots`` times, and
reports the fraction of correlated outcomes (00 or 11) as the fidelity estimate.
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
    correlated = counts.get("00", 0) + counts.get("11", 0)
    fidelity = correlated / shots
    stderr = math.sqrt(max(fidelity * (1 - fidelity), 1e-12) / shots)
    return {"fidelity": fidelity, "fidelity_stderr": stderr, "shots": float(shots)}


if __name__ == "__main__":
    print(run(0.05, 2000))
