"""Acquisition functions on posterior moments (minimization, standardized units).

Expected improvement is computed in log space: far from the incumbent plain EI underflows to 0
and every candidate ties, while log EI still ranks them (the LogEI of Ament et al., 2023, which
BoTorch and Optuna also use). Constraints multiply EI by the probability of feasibility, i.e.
add its log. Every function also has a gradient form for the local optimizer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import erfcx, log_ndtr, ndtr

from orchestrator.optimizer._gp.model import Posterior

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_SQRT_PI_2 = 0.5 * math.log(math.pi / 2.0)
_ASYMPTOTIC = -1e6


def _log1mexp(a: np.ndarray) -> np.ndarray:
    """``log(1 - exp(a))`` for ``a < 0`` without cancellation."""
    return np.where(a > -math.log(2.0), np.log(-np.expm1(a)), np.log1p(-np.exp(a)))


def log_h(z: np.ndarray) -> np.ndarray:
    """``log(phi(z) + z * Phi(z))``, the log of standardized EI, stable for very negative z."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    hi = z > -1.0
    zh = z[hi]
    out[hi] = np.log(np.exp(-0.5 * zh * zh - _LOG_SQRT_2PI) + zh * ndtr(zh))
    lo = ~hi
    zl = np.maximum(z[lo], _ASYMPTOTIC)
    # phi(z) + z Phi(z) = phi(z) (1 - |z| Phi(z)/phi(z)) and Phi/phi = sqrt(pi/2) erfcx(-z/sqrt2)
    a = np.log(-zl) + np.log(erfcx(-zl / math.sqrt(2.0))) + _LOG_SQRT_PI_2
    out[lo] = -0.5 * zl * zl - _LOG_SQRT_2PI + _log1mexp(np.minimum(a, -1e-300))
    far = z < _ASYMPTOTIC
    out[far] = -0.5 * z[far] ** 2 - _LOG_SQRT_2PI - 2.0 * np.log(-z[far])
    return out


def log_ei(mean: np.ndarray, var: np.ndarray, best: float) -> np.ndarray:
    sd = np.sqrt(var)
    return np.log(sd) + log_h((best - mean) / sd)


def log_ei_grad(
    mean: np.ndarray, var: np.ndarray, best: float, dmean: np.ndarray, dvar: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    sd = np.sqrt(var)
    z = (best - mean) / sd
    lh = log_h(z)
    dlh = np.exp(log_ndtr(z) - lh)  # d log h / dz = Phi(z) / h(z)
    d_mean = -dlh / sd
    d_sd = 1.0 / sd - dlh * z / sd
    grad = d_mean[:, None] * dmean + (d_sd / (2.0 * sd))[:, None] * dvar
    return np.log(sd) + lh, grad


def ucb(mean: np.ndarray, var: np.ndarray, beta: float) -> np.ndarray:
    """Optimistic bound of the improvement, as a score to maximize."""
    return -(mean - beta * np.sqrt(var))


def ucb_grad(
    mean: np.ndarray, var: np.ndarray, beta: float, dmean: np.ndarray, dvar: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    sd = np.sqrt(var)
    return ucb(mean, var, beta), -dmean + (beta / (2.0 * sd))[:, None] * dvar


@dataclass
class Feasibility:
    """Constraint models: one GP per constraint on its standardized slack (feasible when >= 0)."""

    posteriors: list[Posterior] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)  # slack 0 in each GP's standardized units

    def log_pof(self, U: np.ndarray) -> np.ndarray:
        out = np.zeros(len(U))
        for post, t in zip(self.posteriors, self.thresholds, strict=True):
            mean, var = post.predict(U)
            out += log_ndtr((mean - t) / np.sqrt(var))  # type: ignore[arg-type]
        return out

    def log_pof_grad(self, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        value, grad = np.zeros(len(U)), np.zeros(U.shape)
        for post, t in zip(self.posteriors, self.thresholds, strict=True):
            mean, var, dmean, dvar = post.predict_with_grad(U)
            sd = np.sqrt(var)
            z = (mean - t) / sd
            lp = log_ndtr(z)
            ratio = np.exp(-0.5 * z * z - _LOG_SQRT_2PI - lp)  # phi/Phi
            grad += ratio[:, None] * (dmean / sd[:, None] - (z / (2.0 * var))[:, None] * dvar)
            value += lp
        return value, grad


@dataclass
class Acquisition:
    """The acquisition the planner maximizes: log EI (or UCB) plus log probability of feasibility.

    ``best`` is None when no observation is feasible yet; the score is then feasibility alone.
    """

    kind: str  # "ei" or "ucb"
    best: float | None
    beta: float = 2.0
    feasibility: Feasibility = field(default_factory=Feasibility)

    def from_moments(self, mean: np.ndarray, var: np.ndarray, log_pof: np.ndarray) -> np.ndarray:
        if self.best is None:
            return log_pof
        if self.kind == "ucb":
            return ucb(mean, var, self.beta) + log_pof
        return log_ei(mean, var, self.best) + log_pof

    def value(self, post: Posterior, U: np.ndarray) -> np.ndarray:
        mean, var = post.predict(U)
        return self.from_moments(mean, var, self.feasibility.log_pof(U))  # type: ignore[arg-type]

    def value_and_grad(self, post: Posterior, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pof, pof_grad = self.feasibility.log_pof_grad(U)
        if self.best is None:
            return pof, pof_grad
        mean, var, dmean, dvar = post.predict_with_grad(U)
        if self.kind == "ucb":
            value, grad = ucb_grad(mean, var, self.beta, dmean, dvar)
        else:
            value, grad = log_ei_grad(mean, var, self.best, dmean, dvar)
        return value + pof, grad + pof_grad
