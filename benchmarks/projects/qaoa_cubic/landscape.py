"""The exact approximation ratio of p = 1 QAOA under a QPU's published noise, without shot noise.

The circuit of ``qaoa_cubic.build`` is simulated as a density matrix with exactly the channels
the fake QPU adds (``tests/support/fake_noise.py``): after each gate a depolarizing channel of
that gate's infidelity (H and RX: one qubit, ZZ: two qubits, in the circuit's order), before
measurement a bit flip of the readout error. The expected cut is then read from the diagonal,
so the value is the mean of infinitely many shots: what the QPU attains at (gamma, beta).

A depolarizing channel of strength lam replaces the state of its qubits by the maximally mixed
one with probability lam: one qubit lam = 4 p / 3 (Braket's ``Depolarizing(p)``), two qubits
lam = 16 p / 15 (``TwoQubitDepolarizing(p)``). Points are simulated in batches (numpy einsum).
"""

from __future__ import annotations

import numpy as np
from qaoa_cubic import cut_value, edges_of, max_cut, n_nodes


class Landscape:
    """``ratio(gammas, betas)`` on ``graph`` under a calibration (fidelities: 1 = noiseless).

    Args:
        graph: a name of ``qaoa_cubic.GRAPHS``.
        one_qubit / two_qubit: average gate fidelities; readout: probability a bit reads right.
    """

    def __init__(
        self, graph: str, one_qubit: float = 1.0, two_qubit: float = 1.0, readout: float = 1.0
    ) -> None:
        self.edges = edges_of(graph)
        self.n = n_nodes(self.edges)
        self.lam1 = 4 / 3 * 1.5 * (1 - one_qubit)
        self.lam2 = 16 / 15 * 1.25 * (1 - two_qubit)
        self.flip = 1 - readout
        bits = [
            "".join(b)
            for b in np.array(np.meshgrid(*[["0", "1"]] * self.n, indexing="ij")).reshape(self.n, -1).T
        ]
        self.cuts = np.array([cut_value(b, self.edges) for b in bits], dtype=float) / max_cut(graph)
        # z[k, x] = +1 / -1: qubit k of basis state x (qubit 0 the most significant, as Braket)
        self.z = np.array([[1 - 2 * int(b[k]) for b in bits] for k in range(self.n)], dtype=float)

    def ratio(self, gammas: np.ndarray, betas: np.ndarray) -> np.ndarray:
        """The expected approximation ratio at each (gamma, beta)."""
        gammas, betas = np.broadcast_arrays(np.asarray(gammas, float), np.asarray(betas, float))
        return (self.probabilities(gammas.ravel(), betas.ravel()) @ self.cuts).reshape(gammas.shape)

    def shot_sd(self, gamma: float, beta: float) -> float:
        """The standard deviation of one shot's ratio at (gamma, beta): a measurement's noise."""
        probs = self.probabilities(np.array([gamma]), np.array([beta]))[0]
        return float(np.sqrt(probs @ self.cuts**2 - (probs @ self.cuts) ** 2))

    def probabilities(self, gammas: np.ndarray, betas: np.ndarray, batch: int = 32) -> np.ndarray:
        """Each basis state's probability of being read, one row per (gamma, beta)."""
        parts = [
            self._probabilities(gammas[i : i + batch], betas[i : i + batch])
            for i in range(0, gammas.size, batch)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, 2**self.n))

    def _probabilities(self, gammas: np.ndarray, betas: np.ndarray) -> np.ndarray:
        n, size = self.n, 2**self.n
        plus = np.full((2, 2), 0.5)
        one = (1 - self.lam1) * plus + self.lam1 * np.eye(2) / 2  # H, then its depolarizing channel
        rho0 = one
        for _ in range(n - 1):
            rho0 = np.kron(rho0, one)
        rho = np.repeat(rho0[None].astype(complex), gammas.size, axis=0)
        for i, j in self.edges:  # ZZ(-gamma) = exp(+i gamma/2 Z_i Z_j): a phase per basis state
            phase = np.exp(0.5j * gammas[:, None] * (self.z[i] * self.z[j])[None, :])
            rho *= phase[:, :, None] * phase.conj()[:, None, :]
            rho = self._depolarize(rho, (i, j), self.lam2)
        c, s = np.cos(betas), np.sin(betas)  # RX(2 beta) = [[cos b, -i sin b], [-i sin b, cos b]]
        rx = np.stack([np.stack([c, -1j * s], -1), np.stack([-1j * s, c], -1)], -2)
        for q in range(n):
            rho = self._unitary(rho, q, rx)
            rho = self._depolarize(rho, (q,), self.lam1)
        probs = np.real(np.einsum("bxx->bx", rho)).reshape((-1,) + (2,) * n)
        flip = np.array([[1 - self.flip, self.flip], [self.flip, 1 - self.flip]])
        for q in range(n):
            probs = np.moveaxis(np.tensordot(probs, flip, axes=([1 + q], [0])), -1, 1 + q)
        return probs.reshape(-1, size)

    def _at(self, axes: dict[int, int]) -> tuple[slice | int, ...]:
        """An index into the tensor form (batch, n row axes, n column axes) fixing ``axes``."""
        index: list[slice | int] = [slice(None)] * (1 + 2 * self.n)
        for axis, value in axes.items():
            index[1 + axis] = value
        return tuple(index)

    def _depolarize(self, rho: np.ndarray, qubits: tuple[int, ...], lam: float) -> np.ndarray:
        """(1 - lam) rho + lam (the partial trace over ``qubits``) x (their maximally mixed state)."""
        if lam == 0:
            return rho
        t = rho.reshape((rho.shape[0],) + (2,) * (2 * self.n))
        diagonal = [
            dict(zip([*qubits, *(self.n + q for q in qubits)], v + v, strict=True))
            for v in _bits(len(qubits))
        ]
        reduced = sum(t[self._at(d)] for d in diagonal)
        t *= 1 - lam
        for d in diagonal:
            t[self._at(d)] += lam / 2 ** len(qubits) * reduced
        return rho

    def _unitary(self, rho: np.ndarray, q: int, u: np.ndarray) -> np.ndarray:
        """u rho u^dagger for a one-qubit ``u`` (one per batch point) on qubit ``q``."""
        t = rho.reshape((rho.shape[0],) + (2,) * (2 * self.n))
        shape = (-1,) + (1,) * (2 * self.n - 1)
        for axis, m in ((q, u), (self.n + q, u.conj())):
            zero, one = t[self._at({axis: 0})].copy(), t[self._at({axis: 1})].copy()
            t[self._at({axis: 0})] = m[:, 0, 0].reshape(shape) * zero + m[:, 0, 1].reshape(shape) * one
            t[self._at({axis: 1})] = m[:, 1, 0].reshape(shape) * zero + m[:, 1, 1].reshape(shape) * one
        return rho


def _bits(k: int) -> list[tuple[int, ...]]:
    return [tuple((x >> (k - 1 - i)) & 1 for i in range(k)) for x in range(2**k)]
