"""Metric standardization, so results of different projects can be compared.

Declared per project under ``standardize`` (see :class:`core.project.StandardizeSpec`). Values
that look wrong are flagged in the result's ``extra['flags']``, never clipped or dropped silently:
a fidelity of 1.03 usually means a bug or a too-small shot count, and hiding it would bias every
comparison built on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.intervals import wilson_interval
from core.project import StandardizeSpec

if TYPE_CHECKING:
    import pandas as pd


def relative_improvement(value: float, baseline: float, goal: str = "maximize") -> float:
    """Improvement over ``baseline`` as a fraction of ``|baseline|``; positive is better for either goal."""
    if baseline == 0:
        raise ValueError("a zero baseline has no relative improvement")
    delta = value - baseline if goal == "maximize" else baseline - value
    return delta / abs(baseline)


@dataclass
class Standardized:
    """Metrics after standardization, the run's cost if it became known, and what looked wrong."""

    metrics: dict[str, float]
    cost: float | None = None
    flags: list[dict[str, Any]] = field(default_factory=list)

    def flag(self, metric: str, problem: str, value: float | None = None) -> None:
        self.flags.append({"metric": metric, "value": value, "problem": problem})


def standardize(
    metrics: dict[str, float],
    params: dict[str, Any],
    spec: StandardizeSpec,
    *,
    seconds: float = 0.0,
    cost: float | None = None,
) -> Standardized:
    """Apply a project's declarations to one result's metrics.

    Args:
        metrics: the extracted metrics (not modified).
        params: the run's parameters (fixed ones included), where the shot count usually is.
        spec: the project's ``standardize`` declarations.
        seconds: the run's execution time, for ``cost_per_second``.
        cost: a cost already known (e.g. from a device executor), used when ``spec.cost`` gives none.
    """
    out = Standardized(dict(metrics), cost)
    shots = _shots(params, out.metrics, spec.shots)
    _fidelities(out, spec)
    _probabilities(out, spec, shots)
    _baselines(out, spec)
    _cost(out, spec, shots, seconds)
    return out


def _fidelities(out: Standardized, spec: StandardizeSpec) -> None:
    m = out.metrics
    for name, scale in spec.fidelity.items():
        if name not in m:
            out.flag(name, "declared fidelity metric is missing from the output")
            continue
        m[name] = m[name] / scale
        if not 0.0 <= m[name] <= 1.0:
            out.flag(name, f"fidelity outside [0, 1] after dividing by scale {scale:g}; kept as is", m[name])


def _probabilities(out: Standardized, spec: StandardizeSpec, shots: float | None) -> None:
    m = out.metrics
    for name in spec.probabilities:
        if name not in m:
            out.flag(name, "declared probability metric is missing from the output")
        elif shots is None:
            out.flag(name, f"no shot count: parameter or metric '{spec.shots}' is missing or not positive")
        elif not 0.0 <= m[name] <= 1.0:
            out.flag(name, "probability outside [0, 1]; no interval computed", m[name])
        else:
            m[f"{name}_ci_low"], m[f"{name}_ci_high"] = wilson_interval(m[name], shots, spec.confidence)


def _baselines(out: Standardized, spec: StandardizeSpec) -> None:
    m = out.metrics
    for name, base in spec.baselines.items():
        reference = base.value if base.value is not None else m.get(base.metric or "")
        if name not in m or reference is None:
            out.flag(
                name,
                f"baseline needs metrics '{name}'"
                + (f" and '{base.metric}'" if base.metric else "")
                + ", missing from the output",
            )
        elif reference == 0:
            out.flag(name, "baseline is 0: relative improvement undefined", 0.0)
        else:
            m[f"{name}_rel_improvement"] = relative_improvement(m[name], reference, base.goal)


def _cost(out: Standardized, spec: StandardizeSpec, shots: float | None, seconds: float) -> None:
    m = out.metrics
    if spec.cost is not None:
        if spec.cost.metric:
            out.cost = m.get(spec.cost.metric)
            if out.cost is None:
                out.flag(spec.cost.metric, "declared cost metric is missing from the output")
        else:
            out.cost = spec.cost.per_task + spec.cost.per_shot * (shots or 0) + spec.cost.per_second * seconds
    if out.cost is not None:
        if shots:
            m["cost_per_shot"] = out.cost / shots
        if seconds > 0:
            m["cost_per_second"] = out.cost / seconds


def _shots(params: dict[str, Any], metrics: dict[str, float], name: str) -> float | None:
    value = params.get(name, metrics.get(name))
    try:
        shots = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return shots if shots > 0 else None


def stderr_over_repeats(
    frame: pd.DataFrame, by: Sequence[str], metrics: Sequence[str] | None = None
) -> pd.DataFrame:
    """Mean and standard error of each metric over the repeats of each parameter point.

    Args:
        frame: one row per result, with parameter columns and numeric metric columns.
        by: the columns that identify a point (the parameters, and the project if several).
        metrics: the metric columns; all numeric columns not in ``by`` when omitted.

    Returns:
        One row per point: ``by``, ``n_repeats``, and ``<metric>_mean`` / ``<metric>_stderr``
        (NaN stderr for a point with a single repeat: no spread can be estimated from one run).
    """
    import pandas as pd

    by = list(by)
    if metrics is None:
        metrics = [c for c in frame.select_dtypes("number").columns if c not in by]
    grouped = frame.groupby(by, dropna=False, sort=True)
    out = grouped.size().rename("n_repeats").to_frame()
    for name in metrics:
        col = grouped[name]
        out[f"{name}_mean"] = col.mean()
        out[f"{name}_stderr"] = col.std(ddof=1) / col.count().pow(0.5)
    return pd.DataFrame(out).reset_index()
