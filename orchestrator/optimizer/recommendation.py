"""What one refit of an optimizer recommends: frozen, typed, and round-tripping through JSON.

Every container is read-only (tuples and ``MappingProxyType`` views), so a recommendation can be
cached, compared and passed between threads without anyone changing it under another's feet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

Phase = Literal["startup", "model", "space_filling", "random"]


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


def frozen_map(value: Mapping[Any, Any] | None = None) -> Mapping[Any, Any]:
    """A read-only copy of ``value`` (empty when None)."""
    return MappingProxyType(dict(value or {}))


def _freeze(obj: Any, **converters: Any) -> None:
    """Replace fields of a frozen dataclass in ``__post_init__`` by their read-only forms."""
    for name, convert in converters.items():
        object.__setattr__(obj, name, convert(getattr(obj, name)))


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

    bounds: Mapping[str, tuple[float, float]]
    fixed: Mapping[str, Any] = field(default_factory=frozen_map)
    center: Mapping[str, Any] = field(default_factory=frozen_map)
    predicted: float | None = None
    rank: int = 0
    kind: str = "best"

    def __post_init__(self) -> None:
        _freeze(self, bounds=frozen_map, fixed=frozen_map, center=frozen_map)

    def contains(self, parameters: Mapping[str, Any]) -> bool:
        """True if ``parameters`` lie inside the bounds and match the fixed values."""
        for name, (low, high) in self.bounds.items():
            value = parameters.get(name)
            if value is None or not (low - 1e-12 <= float(value) <= high + 1e-12):
                return False
        return all(parameters.get(name) == value for name, value in self.fixed.items())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
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
        """Inverse of ``to_dict``."""
        return cls(
            {k: (float(v[0]), float(v[1])) for k, v in data.get("bounds", {}).items()},
            dict(data.get("fixed", {})),
            dict(data.get("center", {})),
            data.get("predicted"),
            int(data.get("rank", 0)),
            str(data.get("kind", "best")),
        )


@dataclass(frozen=True)
class Incumbent:
    """The best feasible full-shot result so far, by the model's posterior mean."""

    experiment_id: str
    index: int
    parameters: Mapping[str, Any]
    metrics: Mapping[str, float | None]
    value: float  # objective units for one objective, the scalarized objective otherwise

    def __post_init__(self) -> None:
        _freeze(self, parameters=frozen_map, metrics=frozen_map)


@dataclass(frozen=True)
class Coverage:
    """How much of the sweep stays space-filling (``optimizer.coverage_share``)."""

    target_share: float
    startup_points: int
    runs: int
    space_filling_runs: int

    @property
    def share(self) -> float:
        """Space-filling runs as a share of all runs so far."""
        return self.space_filling_runs / self.runs if self.runs else 0.0


@dataclass(frozen=True)
class HeadPlan:
    """What the planned head of the order is made of: model, coverage and refinement picks."""

    model: int = 0
    coverage: int = 0
    refinement: int = 0


@dataclass(frozen=True)
class EarlyStop:
    """One experiment to stop now, and why (the rule's name, or ``"not promoted"``)."""

    experiment_id: str
    reason: str


@dataclass(frozen=True)
class KernelFit:
    """Fitted GP kernel hyperparameters, carried to warm-start the next refit's fit."""

    length_scales: tuple[float, ...]
    scale: float
    noise: float
    mean: float = 0.0

    def __post_init__(self) -> None:
        _freeze(self, length_scales=lambda v: tuple(float(x) for x in v))


def _ids(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


@dataclass(frozen=True)
class OptimizationRecommendation:
    """One refit's advice to the coordinator (the seed's ``OptimizationRecommendation``).

    Attributes:
        priority_adjustments: pending point index -> score; higher runs sooner. The scores are
            ranks mapped to (0, 1], usable directly as sorted-set scores.
        early_stops: experiments to stop now with their reasons (already capped at
            ``max_stopped_share``).
        promote_to_full_shots: low-shot runs (shots as a budget) to rerun at their full shots.
        promising_regions: where the model expects good results, best first.
        confidence_level: how well the model ranks held-out results (leave-one-out Spearman
            correlation, clipped to [0, 1]); 0 before the model exists.
        refinement_points: new parameter sets to add to the sweep (marked as added).
        refinement_scores: their scores, on the same scale as ``priority_adjustments``.
        summary: one paragraph on what this refit changed.
        sampler: the optimizer that made it (``optimizer.sampler``).
        phase: ``"startup"`` (space-filling design before the model), ``"model"``,
            ``"space_filling"`` (no objective, or the Sobol sampler) or ``"random"``.
        incumbent: the best feasible result so far, when a model exists.
        coverage: the coverage plan (GP sampler only).
        head: the make-up of the planned head of the order (GP sampler in its model phase).
        kernels: the GP's fitted hyperparameters by model name; the next refit starts its fit
            from them (pass this recommendation as ``previous``).
        created_at: ISO time of the refit.
    """

    priority_adjustments: Mapping[int, float]
    early_stops: tuple[EarlyStop, ...] = ()
    promote_to_full_shots: tuple[str, ...] = ()
    promising_regions: tuple[ParameterRegion, ...] = ()
    confidence_level: float = 0.0
    refinement_points: tuple[Mapping[str, Any], ...] = ()
    refinement_scores: tuple[float, ...] = ()
    summary: str = ""
    sampler: str = "gp"
    phase: Phase = "startup"
    incumbent: Incumbent | None = None
    coverage: Coverage | None = None
    head: HeadPlan | None = None
    kernels: Mapping[str, KernelFit] = field(default_factory=frozen_map)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def __post_init__(self) -> None:
        _freeze(
            self,
            priority_adjustments=frozen_map,
            early_stops=tuple,
            promote_to_full_shots=_ids,
            promising_regions=tuple,
            refinement_points=lambda points: tuple(frozen_map(p) for p in points),
            refinement_scores=lambda scores: tuple(float(s) for s in scores),
            kernels=frozen_map,
        )

    @property
    def early_stop_candidates(self) -> list[str]:
        """Ids of the experiments to stop now (the seed's ``early_stop_candidates``)."""
        return [s.experiment_id for s in self.early_stops]

    def stop_reason(self, experiment_id: str, default: str = "optimizer") -> str:
        """Why ``experiment_id`` is to be stopped (``default`` if it is not)."""
        return next((s.reason for s in self.early_stops if s.experiment_id == experiment_id), default)

    def top(self, k: int) -> list[int]:
        """The ``k`` highest-scored pending indices, best first."""
        ranked = sorted(self.priority_adjustments.items(), key=lambda kv: (-kv[1], kv[0]))
        return [index for index, _ in ranked[:k]]

    def to_dict(self, *, include_priorities: bool = True) -> dict[str, Any]:
        """JSON-ready dict; ``include_priorities=False`` keeps history records small."""
        coverage = None
        if self.coverage is not None:
            coverage = {**_as_dict(self.coverage), "share": self.coverage.share}
        return plain(
            {
                "priority_adjustments": {str(k): v for k, v in self.priority_adjustments.items()}
                if include_priorities
                else {},
                "early_stops": [_as_dict(s) for s in self.early_stops],
                "promote_to_full_shots": self.promote_to_full_shots,
                "promising_regions": [r.to_dict() for r in self.promising_regions],
                "confidence_level": self.confidence_level,
                "refinement_points": self.refinement_points,
                "refinement_scores": self.refinement_scores,
                "summary": self.summary,
                "sampler": self.sampler,
                "phase": self.phase,
                "incumbent": _as_dict(self.incumbent) if self.incumbent else None,
                "coverage": coverage,
                "head": _as_dict(self.head) if self.head else None,
                "kernels": {k: _as_dict(v) for k, v in self.kernels.items()},
                "created_at": self.created_at,
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OptimizationRecommendation:
        """Inverse of ``to_dict``; keys it does not know (e.g. ``refit_seconds``) are ignored."""
        coverage = data.get("coverage")
        return cls(
            priority_adjustments={int(k): float(v) for k, v in data.get("priority_adjustments", {}).items()},
            early_stops=tuple(EarlyStop(**s) for s in data.get("early_stops", [])),
            promote_to_full_shots=tuple(data.get("promote_to_full_shots", [])),
            promising_regions=tuple(ParameterRegion.from_dict(r) for r in data.get("promising_regions", [])),
            confidence_level=float(data.get("confidence_level", 0.0)),
            refinement_points=tuple(dict(p) for p in data.get("refinement_points", [])),
            refinement_scores=tuple(float(s) for s in data.get("refinement_scores", [])),
            summary=str(data.get("summary", "")),
            sampler=str(data.get("sampler", "gp")),
            phase=data.get("phase", "startup"),
            incumbent=Incumbent(**data["incumbent"]) if data.get("incumbent") else None,
            coverage=Coverage(**{k: v for k, v in coverage.items() if k != "share"}) if coverage else None,
            head=HeadPlan(**data["head"]) if data.get("head") else None,
            kernels={k: KernelFit(**v) for k, v in (data.get("kernels") or {}).items()},
            created_at=str(data.get("created_at", "")),
        )


def _as_dict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}
