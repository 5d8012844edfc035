"""Turn result rows into what the models train on.

* Objectives: one objective is modelled as it is (minimized: maximized metrics are negated).
  Several are combined either by a weighted sum of z-scores ("weighted") or by ParEGO's
  augmented Chebyshev scalarization with a weight vector drawn afresh at each refit ("pareto"),
  which reaches every point of a non-convex Pareto front over successive refits.
* Metric constraints: ``lhs >= rhs`` becomes the slack ``lhs - rhs`` (feasible when >= 0) and
  gets its own GP; any other boolean expression becomes a +1/-1 label regressed the same way.
* Noise: a metric's shot-noise variance is read from ``metrics["<metric>_variance"]`` or
  ``extra["variance"][metric]``; for a low-shot run (``extra["shot_fraction"] < 1``, with
  ``extra["shots"]``) of a metric in [0, 1] without one, the binomial ``p (1 - p) / shots`` is
  used. Low-fidelity rows enter the model only with a variance.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.expressions import Expression
from orchestrator.optimizer._gp.encoding import SpaceEncoder

_MODEL_STATUSES = {"completed", "early_stopped"}


@dataclass(frozen=True)
class Row:
    """One result, reduced to what the optimizer reads."""

    experiment_id: str
    index: int
    status: str
    parameters: Mapping[str, Any]
    metrics: Mapping[str, float]
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fidelity(self) -> float:
        """Share of the full shots this run used (``extra["shot_fraction"]``, 1 when absent)."""
        value = self.extra.get("shot_fraction", 1.0)
        return float(value) if value is not None else 1.0


class SlackFunction:
    """Slack of one metric constraint: >= 0 when it holds."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.names = Expression(text).names
        tree = ast.parse(text.strip(), mode="eval").body
        self._sides: tuple[Expression, Expression, float] | None = None
        if (
            isinstance(tree, ast.Compare)
            and len(tree.ops) == 1
            and isinstance(tree.ops[0], (ast.Gt, ast.GtE, ast.Lt, ast.LtE))
        ):
            sign = 1.0 if isinstance(tree.ops[0], (ast.Gt, ast.GtE)) else -1.0
            self._sides = (
                Expression(ast.unparse(tree.left)),
                Expression(ast.unparse(tree.comparators[0])),
                sign,
            )
        self._whole = Expression(text)

    def __call__(self, values: Mapping[str, Any]) -> float:
        if any(name not in values for name in self.names):
            return math.nan
        try:
            if self._sides is not None:
                left, right, sign = self._sides
                return float(sign * (left.evaluate(values) - right.evaluate(values)))
            return 1.0 if bool(self._whole.evaluate(values)) else -1.0
        except (TypeError, ValueError, ZeroDivisionError, ArithmeticError):
            return math.nan


@dataclass
class Observations:
    """The rows the models may use, aligned: ``X`` encoded, targets raw (not yet standardized)."""

    rows: list[Row]
    X: np.ndarray
    values: np.ndarray  # (n, k) objective metrics, minimization sign applied; NaN when missing
    variances: np.ndarray  # (n, k) known noise variance of those; 0 when unknown
    slack: np.ndarray  # (n, c) constraint slacks; NaN when unknown
    usable: np.ndarray  # (n,) bool: rows the objective model trains on

    @property
    def feasible(self) -> np.ndarray:
        if self.slack.shape[1] == 0:
            return np.ones(len(self.rows), dtype=bool)
        with np.errstate(invalid="ignore"):
            return np.all(self.slack >= 0, axis=1)

    @property
    def full_fidelity(self) -> np.ndarray:
        return np.array([r.fidelity >= 1.0 for r in self.rows], dtype=bool)


def noise_variance(row: Row, metric: str) -> float:
    """Known noise variance of ``metric`` in ``row``, or NaN."""
    value = row.metrics.get(f"{metric}_variance")
    if value is None:
        value = (row.extra.get("variance") or {}).get(metric)
    if value is not None and math.isfinite(float(value)):
        return max(float(value), 0.0)
    shots = row.extra.get("shots")
    p = row.metrics.get(metric)
    if row.fidelity < 1.0 and shots and p is not None and 0.0 <= float(p) <= 1.0:
        return max(float(p) * (1.0 - float(p)), 0.25 / float(shots)) / float(shots)
    return math.nan


def build_observations(
    rows: Sequence[Row],
    encoder: SpaceEncoder,
    objectives: Sequence[tuple[str, float, float]],
    constraints: Sequence[SlackFunction],
) -> Observations:
    """``objectives`` are ``(metric, sign, weight)`` with sign -1 for maximized metrics."""
    kept = [r for r in rows if r.status in _MODEL_STATUSES]
    n, k = len(kept), len(objectives)
    X = encode_rows(encoder, kept)
    values = np.full((n, k), np.nan)
    variances = np.zeros((n, k))
    for i, row in enumerate(kept):
        for j, (metric, sign, _) in enumerate(objectives):
            v = row.metrics.get(metric)
            if v is not None and math.isfinite(float(v)):
                values[i, j] = sign * float(v)
                var = noise_variance(row, metric)
                variances[i, j] = 0.0 if math.isnan(var) else var
    slack = np.full((n, len(constraints)), np.nan)
    for i, row in enumerate(kept):
        scope = {**row.parameters, **row.metrics}
        for j, fn in enumerate(constraints):
            slack[i, j] = fn(scope)
    usable = np.all(np.isfinite(values), axis=1) if k else np.zeros(n, dtype=bool)
    if n:
        usable &= np.all(np.isfinite(X), axis=1)
    for i, row in enumerate(kept):
        median_stopped = row.status == "early_stopped" and row.fidelity >= 1.0
        low_without_noise = row.fidelity < 1.0 and any(
            math.isnan(noise_variance(row, metric)) for metric, _, _ in objectives
        )
        if median_stopped or low_without_noise:
            # partial curves and unquantified low-shot values would bias the model
            usable[i] = False
    return Observations(kept, X, values, variances, slack, usable)


def encode_rows(encoder: SpaceEncoder, rows: Sequence[Row]) -> np.ndarray:
    """Encode the parameters of ``rows``; a missing or unknown value gives a NaN row."""
    columns = {
        name: np.asarray([r.parameters.get(name) for r in rows], dtype=object) for name in encoder.names
    }
    return encoder.encode(columns) if rows else np.zeros((0, encoder.width))


@dataclass(frozen=True)
class Scalarizer:
    """Maps objective values (minimization sign applied) to the one target the GP models."""

    mode: str  # "single", "weighted" or "pareto"
    weights: np.ndarray
    center: np.ndarray
    span: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray, weights: np.ndarray, mode: str, rng: np.random.Generator) -> Scalarizer:
        """Fit on the finite rows of ``values`` (n, k); ``rng`` draws ParEGO's weight vector."""
        k = values.shape[1]
        rows = values[np.all(np.isfinite(values), axis=1)]
        if k == 1 or len(rows) == 0:
            return cls("single", np.ones(k), np.zeros(k), np.ones(k))
        if mode == "pareto":
            low, high = rows.min(axis=0), rows.max(axis=0)
            return cls("pareto", rng.dirichlet(np.ones(k)), low, np.where(high > low, high - low, 1.0))
        std = rows.std(axis=0)
        return cls("weighted", weights / weights.sum(), rows.mean(axis=0), np.where(std > 0, std, 1.0))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        unit = (np.atleast_2d(values) - self.center) / self.span
        if self.mode == "single":
            return unit[:, 0]
        weighted = unit * self.weights
        if self.mode == "pareto":
            # augmented Chebyshev: the max reaches non-convex parts of the front, the sum breaks ties
            return weighted.max(axis=1) + 0.05 * weighted.sum(axis=1)
        return weighted.sum(axis=1)

    def variance(self, variances: np.ndarray) -> np.ndarray:
        """Noise variance of the target given per-objective variances (linearized for ParEGO)."""
        scaled = np.atleast_2d(variances) * (self.weights / self.span) ** 2
        return scaled.sum(axis=1) if self.mode != "single" else scaled[:, 0]
