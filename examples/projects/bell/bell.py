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


def correlator(counts: dict[str, int]) -> tuple[float, float]:
    """<A x B> of two +-1 outcomes from the counts, and its shot-noise variance."""
    shots = sum(counts.values())
    same = counts.get("00", 0) + counts.get("11", 0)
    value = (2 * same - shots) / shots
    return value, max(1 - value**2, 1.0 / shots) / shots


def chsh(noise: float = 0.0, shots: int = 4000) -> dict[str, float]:
    """The CHSH value S = E(a0,b0) + E(a0,b1) + E(a1,b0) - E(a1,b1) of the noisy Bell pair.

    Alice measures Z (a0 = 0) or X (a1 = pi/2), Bob (Z + X)/sqrt(2) or (Z - X)/sqrt(2); each
    measurement direction theta in the x-z plane is a Ry(-theta) before a Z measurement. Quantum
    mechanics allows at most 2 sqrt(2) (Tsirelson), reached by the noiseless pair.
    """
    device = LocalSimulator("braket_dm")
    value, variance = 0.0, 0.0
    for a, b, sign in (
        (0, math.pi / 4, 1),
        (0, -math.pi / 4, 1),
        (math.pi / 2, math.pi / 4, 1),
        (math.pi / 2, -math.pi / 4, -1),
    ):
        circuit = bell_circuit(noise).ry(0, -a).ry(1, -b)  # noise on the pair, not on the measurement
        e, var = correlator(device.run(circuit, shots=int(shots)).result().measurement_counts)
        value, variance = value + sign * e, variance + var
    return {"chsh": value, "chsh_stderr": math.sqrt(variance), "shots": float(shots)}


def run(noise: float = 0.0, shots: int = 1000) -> dict[str, float]:
    device = LocalSimulator("braket_dm")
    result = device.run(bell_circuit(noise), shots=int(shots)).result()
    counts = result.measurement_counts
    p_correlated = (counts.get("00", 0) + counts.get("11", 0)) / shots
    stderr = math.sqrt(max(p_correlated * (1 - p_correlated), 1e-12) / shots)
    return {"p_correlated": p_correlated, "p_correlated_stderr": stderr, "shots": float(shots)}


if __name__ == "__main__":
    print(run(0.05, 2000))
