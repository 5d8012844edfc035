"""The ``validation:`` section of a sweep file: what each metric must be, and each run's verdict.

::

    validation:
      fidelity: {bounds: [0, 1], theory: "(1 - noise)**2", tolerance: 3}
      energy: {reference: -1.1373, reference_stderr: 0.0005}

``bounds`` hold for every run and are checked here, as each result lands (:func:`verdict`), so
the row carries a ``validation`` column and the optimizer can leave violations out of its fit.
``theory`` and ``reference`` are statements about a point's *mean* (a tolerance in standard
errors needs repeats or shots), so :mod:`analysis.expectations` checks them over the aggregates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.expressions import Expression

OK, WARN, VIOLATION = "ok", "warn", "violation"


class Expectation(BaseModel):
    """What one metric must be (``validation.<metric>``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bounds: tuple[float | None, float | None] | None = Field(
        None, description="[low, high] every run must fall in; null for an open side"
    )
    theory: str | None = Field(None, description="expected point mean, an expression over the parameters")
    tolerance: float = Field(
        3.0, gt=0, description="allowed distance from theory/reference, in standard errors"
    )
    reference: float | None = Field(None, description="a known value the point means must match")
    reference_stderr: float = Field(0.0, ge=0, description="the reference's own standard error")

    @field_validator("theory")
    @classmethod
    def _parse(cls, text: str | None) -> str | None:
        if text is not None:
            Expression(text)  # raises ValueError with the reason
        return text

    @model_validator(mode="after")
    def _one_expectation(self) -> Expectation:
        if self.theory is not None and self.reference is not None:
            raise ValueError(
                "give either theory or reference, not both; keep the one the metric should match"
            )
        low, high = self.bounds or (None, None)
        if low is not None and high is not None and low > high:
            raise ValueError(f"bounds [{low}, {high}] are empty; put the lower bound first")
        return self


def verdict(
    metrics: Mapping[str, Any], extra: Mapping[str, Any] | None, spec: Mapping[str, Expectation]
) -> str:
    """One run's verdict: ``ok``, ``warn: <reason>`` (a range flag its adapter raised) or
    ``violation: <reason>`` (a metric outside its bounds). Cheap: a few comparisons per run."""
    problems = []
    for metric, expectation in spec.items():
        value = metrics.get(metric)
        if expectation.bounds is None or not isinstance(value, int | float) or math.isnan(value):
            continue
        low, high = expectation.bounds
        if (low is not None and value < low) or (high is not None and value > high):
            problems.append(f"{metric}={value:.6g} outside [{_side(low)}, {_side(high)}]")
    if problems:
        return f"{VIOLATION}: " + "; ".join(problems)
    flags = (extra or {}).get("flags") or []
    if flags:
        return f"{WARN}: " + "; ".join(f"{f.get('metric')}: {f.get('problem')}" for f in flags)
    return OK


def is_violation(text: str | None) -> bool:
    return bool(text) and str(text).startswith(VIOLATION)


def _side(value: float | None) -> str:
    return "null" if value is None else f"{value:g}"
