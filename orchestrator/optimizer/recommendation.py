"""What one refit of the optimizer recommends, in a form that round-trips through JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    """Convert numpy scalars/arrays and tuples to JSON-ready Python values (NaN becomes None)."""
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True)
class ParameterRegion:
    """A box of the parameter space where the model expects good results.

    Attributes:
        bounds: ``name -> (low, high)`` for numeric parameters, in parameter units.
        fixed: values held at the centre's for the other parameters (categoricals).
        center: the good observed point the region is built around.
        predicted: the model's prediction at the centre (objective units for one objective,
            the scalarized objective otherwise).
        rank: 0 for the most promising region.
        kind: ``"best"`` for a box around one of the best results, ``"explore"`` for a box around
            a point the acquisition rates highly where no good result is yet (refinement
            searches both).
    """

    bounds: dict[str, tuple[float, float]]
    fixed: dict[str, Any] = field(default_factory=dict)
    center: dict[str, Any] = field(default_factory=dict)
    predicted: float | None = None
    rank: int = 0
    kind: str = "best"

    def contains(self, parameters: Mapping[str, Any]) -> bool:
        """True if ``parameters`` lie inside the bounds and match the fixed values."""
        for name, (low, high) in self.bounds.items():
            value = parameters.get(name)
            if value is None or not (low - 1e-12 <= float(value) <= high + 1e-12):
                return False
        return all(parameters.get(name) == value for name, value in self.fixed.items())

    def to_dict(self) -> dict[str, Any]:
        return plain(
            {
                "bounds": {k: list(v) for k, v in self.bounds.items()},
                "fixed": self.fixed,
                "center": self.center,
                "predicted": self.predicted,
                "rank": self.rank,
                "kind": self.kind,
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParameterRegion:
        return cls(
            {k: (float(v[0]), float(v[1])) for k, v in data.get("bounds", {}).items()},
            dict(data.get("fixed", {})),
            dict(data.get("center", {})),
            data.get("predicted"),
            int(data.get("rank", 0)),
            str(data.get("kind", "best")),
        )


@dataclass
class OptimizationRecommendation:
    """One refit's advice to the coordinator.

    Attributes:
        priority_adjustments: pending point index -> score; higher runs sooner. The scores are
            ranks mapped to (0, 1], usable directly as sorted-set scores.
        early_stop_candidates: experiment ids to stop now (already capped at the allowed share).
        promising_regions: where the model expects good results, best first.
        resource_reallocation: fidelity and coverage bookkeeping (promotions to full shots,
            the low-fidelity share to run new experiments at, the coverage plan).
        confidence_level: how well the model ranks held-out results (leave-one-out Spearman
            correlation, clipped to [0, 1]); 0 before the model exists.
        refinement_points: new parameter sets to add to the sweep (marked as added).
        refinement_scores: their scores, on the same scale as ``priority_adjustments``.
        summary: one paragraph on what this refit changed.
        phase: ``"startup"`` (space-filling design), ``"model"`` or ``"space_filling"`` (no objective).
        incumbent: the best feasible result so far (``experiment_id``, ``parameters``, ``value``).
        coverage: the coverage plan: target share, space-filling runs so far, runs so far.
        created_at: ISO time of the refit.
    """

    priority_adjustments: dict[int, float]
    early_stop_candidates: list[str] = field(default_factory=list)
    promising_regions: list[ParameterRegion] = field(default_factory=list)
    resource_reallocation: dict[str, Any] = field(default_factory=dict)
    confidence_level: float = 0.0
    refinement_points: list[dict[str, Any]] = field(default_factory=list)
    refinement_scores: list[float] = field(default_factory=list)
    summary: str = ""
    phase: str = "startup"
    incumbent: dict[str, Any] | None = None
    coverage: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def top(self, k: int) -> list[int]:
        """The ``k`` highest-scored pending indices, best first."""
        ranked = sorted(self.priority_adjustments.items(), key=lambda kv: (-kv[1], kv[0]))
        return [index for index, _ in ranked[:k]]

    def to_dict(self, *, include_priorities: bool = True) -> dict[str, Any]:
        """JSON-ready dict; ``include_priorities=False`` keeps history records small."""
        return plain(
            {
                "priority_adjustments": {str(k): v for k, v in self.priority_adjustments.items()}
                if include_priorities
                else {},
                "early_stop_candidates": list(self.early_stop_candidates),
                "promising_regions": [r.to_dict() for r in self.promising_regions],
                "resource_reallocation": self.resource_reallocation,
                "confidence_level": self.confidence_level,
                "refinement_points": self.refinement_points,
                "refinement_scores": self.refinement_scores,
                "summary": self.summary,
                "phase": self.phase,
                "incumbent": self.incumbent,
                "coverage": self.coverage,
                "created_at": self.created_at,
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OptimizationRecommendation:
        return cls(
            priority_adjustments={int(k): float(v) for k, v in data.get("priority_adjustments", {}).items()},
            early_stop_candidates=list(data.get("early_stop_candidates", [])),
            promising_regions=[ParameterRegion.from_dict(r) for r in data.get("promising_regions", [])],
            resource_reallocation=dict(data.get("resource_reallocation", {})),
            confidence_level=float(data.get("confidence_level", 0.0)),
            refinement_points=[dict(p) for p in data.get("refinement_points", [])],
            refinement_scores=[float(s) for s in data.get("refinement_scores", [])],
            summary=str(data.get("summary", "")),
            phase=str(data.get("phase", "startup")),
            incumbent=data.get("incumbent"),
            coverage=dict(data.get("coverage", {})),
            created_at=str(data.get("created_at", "")),
        )
