"""A small Gaussian-process surrogate for sensitivity analysis of sampled or adaptive sweeps.

Matérn 5/2 with one length scale per parameter, a signal variance and a noise variance, fitted by
maximum a posteriori (scipy L-BFGS, a few restarts). Inputs are scaled to [0, 1] (log-scaled
parameters in log space), outputs standardised, so the length scales read as "share of the
range over which the metric changes": small means the parameter matters.

The analysis fits its own model instead of reading the optimizer's: it must work on a copy of
the results with no broker, and on sweeps that never ran the optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize
from threadpoolctl import threadpool_limits

_SQRT5 = np.sqrt(5.0)


def _matern52(a: np.ndarray, b: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    d = np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) / lengths) ** 2, 0).sum(-1))
    return (1 + _SQRT5 * d + 5 / 3 * d**2) * np.exp(-_SQRT5 * d)


@dataclass
class GaussianProcess:
    """A fitted GP: ``predict(x)`` gives the posterior mean in the original units."""

    x: np.ndarray
    lengths: np.ndarray
    signal: float
    noise: float
    alpha: np.ndarray
    y_mean: float
    y_std: float

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, seed: int = 0, restarts: int = 2) -> GaussianProcess:
        """Fit on inputs ``x`` (n x d, in [0, 1]) and outputs ``y`` (n)."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        y_mean, y_std = y.mean(), y.std() or 1.0
        z = (y - y_mean) / y_std
        n, d = x.shape

        sq = (x[:, None, :] - x[None, :, :]) ** 2  # n x n x d squared differences, reused

        def neg_log_posterior(theta: np.ndarray) -> tuple[float, np.ndarray]:
            """Negative log posterior and its exact gradient (numeric gradients cost 12x more)."""
            lengths, signal, noise = np.exp(theta[:d]), np.exp(theta[d]), np.exp(theta[d + 1])
            scaled = sq / lengths**2
            r = np.sqrt(scaled.sum(-1))
            decay = np.exp(-_SQRT5 * r)
            base = (1 + _SQRT5 * r + 5 / 3 * r**2) * decay
            k = signal * base + (noise + 1e-8) * np.eye(n)
            try:
                chol = linalg.cho_factor(k, lower=True)
            except linalg.LinAlgError:
                return 1e10, np.zeros_like(theta)
            a = linalg.cho_solve(chol, z)
            w = linalg.cho_solve(chol, np.eye(n)) - np.outer(a, a)
            nll = 0.5 * z @ a + np.log(np.diag(chol[0])).sum()
            grad = np.empty_like(theta)
            # dK/dlog(l_d) = signal * 5/3 * (1 + sqrt5 r) exp(-sqrt5 r) * (delta_d / l_d)^2
            common = signal * 5 / 3 * (1 + _SQRT5 * r) * decay
            grad[:d] = 0.5 * np.einsum("ij,ijk->k", w * common, scaled)
            grad[d] = 0.5 * np.sum(w * signal * base)
            grad[d + 1] = 0.5 * np.trace(w) * noise
            # weak log-normal priors keep length scales and noise away from degenerate fits
            prior = 0.5 * ((theta[:d] - np.log(0.5)) ** 2).sum() / 1.5**2
            prior += 0.5 * (theta[d + 1] - np.log(1e-2)) ** 2 / 2**2
            grad[:d] += (theta[:d] - np.log(0.5)) / 1.5**2
            grad[d + 1] += (theta[d + 1] - np.log(1e-2)) / 2**2
            return float(nll + prior), grad

        rng = np.random.default_rng(seed)
        best = None
        starts = [np.r_[np.full(d, np.log(0.5)), 0.0, np.log(1e-2)]]
        starts += [
            np.r_[rng.uniform(np.log(0.05), np.log(2), d), 0.0, np.log(1e-2)] for _ in range(restarts - 1)
        ]
        bounds = [(np.log(1e-3), np.log(1e2))] * d + [
            (np.log(1e-2), np.log(1e2)),
            (np.log(1e-6), np.log(1.0)),
        ]
        # One BLAS thread: on matrices this small, threads only contend (8x slower on a busy
        # two-core machine).
        with threadpool_limits(1):
            for start in starts:
                res = optimize.minimize(neg_log_posterior, start, jac=True, method="L-BFGS-B", bounds=bounds)
                if best is None or res.fun < best.fun:
                    best = res
        assert best is not None  # starts is never empty
        theta = best.x
        lengths, signal, noise = np.exp(theta[:d]), float(np.exp(theta[d])), float(np.exp(theta[d + 1]))
        k = signal * _matern52(x, x, lengths) + (noise + 1e-8) * np.eye(n)
        alpha = linalg.cho_solve(linalg.cho_factor(k, lower=True), z)
        return cls(x, lengths, signal, noise, alpha, float(y_mean), float(y_std))

    def predict(self, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
        out = [
            self.signal * _matern52(np.asarray(x[i : i + chunk], float), self.x, self.lengths) @ self.alpha
            for i in range(0, len(x), chunk)
        ]
        return np.concatenate(out) * self.y_std + self.y_mean
