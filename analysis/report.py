"""One sweep's analysis as one object, :class:`SweepAnalysis`, with a stable JSON form.

``analyze(data)`` runs every step (aggregation, the best configurations, comparisons,
sensitivity, Pareto, convergence, the checks against expectations, a fidelity ladder's rungs) on a :class:`~analysis.dataset.SweepData`; :mod:`analysis.html_report` and :mod:`analysis.markdown` turn the result
into HTML or Markdown. The JSON form is documented in the README ("Analysis and reports") and in
:data:`JSON_SCHEMA`; every top-level key is always present, empty when it does not apply.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from analysis.aggregate import aggregate
from analysis.best import best_configurations
from analysis.compare import cross_project, records
from analysis.convergence import convergence
from analysis.dataset import SweepData
from analysis.expectations import check_results
from analysis.fidelity import SCHEMA as FIDELITY_SCHEMA
from analysis.fidelity import fidelity_ladder
from analysis.intermediate import intermediate_values
from analysis.pareto import pareto_analysis
from analysis.sensitivity import sensitivity_analysis
from analysis.significance import Test, compare_configurations

SCHEMA_VERSION = 1
_PACKAGES = (
    "quantum-orchestrator",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "SALib",
    "matplotlib",
    "amazon-braket-sdk",
)


@dataclass
class SweepAnalysis:
    """Everything the analysis concluded about one sweep. See :data:`JSON_SCHEMA`."""

    sweep: dict[str, Any]
    summary: dict[str, Any]
    outcome: dict[str, Any] = field(default_factory=dict)
    best: dict[str, Any] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    cross_project: dict[str, Any] = field(default_factory=dict)
    sensitivity: dict[str, Any] = field(default_factory=dict)
    pareto: dict[str, Any] = field(default_factory=dict)
    convergence: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    intermediate: dict[str, Any] = field(default_factory=dict)
    reproducibility: dict[str, Any] = field(default_factory=dict)
    fidelity: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        # The bulky sections are built JSON-safe (``records``, ``finite``): walking their millions
        # of values again would cost more than the analysis. The rest is walked to be sure.
        return {
            f.name: getattr(self, f.name)
            if f.name in _SAFE_BY_CONSTRUCTION
            else _json_safe(getattr(self, f.name))
            for f in fields(self)
        }

    def to_json(self, indent: int | None = None) -> str:
        """The JSON form; indented for a small sweep, compact for a large one (``indent`` None),
        where indentation would triple the time (Python's C encoder does not indent)."""
        document = self.to_dict()
        if indent is None and len(self.groups) <= INDENT_UP_TO:
            indent = 2
        if indent is None:
            return json.dumps(document, allow_nan=False, separators=(",", ":"))
        return json.dumps(document, indent=indent, allow_nan=False)

    def groups_frame(self) -> pd.DataFrame:
        """``groups`` as a DataFrame, parameters spread into ``param.*`` columns."""
        if not self.groups:
            return pd.DataFrame()
        frame = pd.DataFrame(self.groups)
        params = pd.DataFrame(list(frame.pop("parameters"))).add_prefix("param.")
        return pd.concat([frame, params], axis=1)


def analyze(
    data: SweepData,
    *,
    confidence: float = 0.95,
    interval: str = "auto",
    test: Test = "welch",
    alpha: float = 0.05,
    seed: int = 0,
) -> SweepAnalysis:
    """Analyse a sweep's results.

    Args:
        data: the rows and stored configuration (:func:`analysis.dataset.load_sweep_data`).
        confidence: level of every interval.
        interval: ``auto`` (t, Wilson for declared probabilities), ``t`` or ``bootstrap``.
        test: ``welch`` or ``mannwhitney`` for the comparisons.
        alpha: false-discovery rate of the Benjamini-Hochberg correction.
        seed: seed of the bootstraps, for reproducible reports.
    """
    ok = data.completed
    keys = data.parameters
    groups = aggregate(
        ok,
        keys,
        data.metrics,
        confidence=confidence,
        method=interval,  # type: ignore[arg-type]
        probabilities=data.probability_metrics,
        seed=seed,
        uncertainties=data.uncertainties,
    )
    objectives = [{"metric": o["metric"], "goal": o["goal"]} for o in data.objectives]
    focus = objectives or [
        {"metric": m.removeprefix("metric."), "goal": "maximize"} for m in data.metrics[:3]
    ]
    comparisons: list[dict[str, Any]] = []
    for objective in objectives:
        table = compare_configurations(
            ok, keys, objective["metric"], objective["goal"], test=test, alpha=alpha
        )
        if not table.empty and table["p_value"].notna().any():  # without repeats there is no test
            table.insert(0, "metric", objective["metric"])
            table.insert(0, "kind", "configuration")
            comparisons += records(table, parameters=keys)
    cross = cross_project(data, test=test, alpha=alpha, confidence=confidence)
    comparisons += [{"kind": "projects", **row} for row in cross["pairs"]]
    config = data.config
    optimizer = config.get("optimizer") or {}
    group_records = records(groups, parameters=keys)
    return SweepAnalysis(
        sweep=_sweep_section(data, objectives),
        summary=_summary(data),
        outcome=_outcome(data),
        best=best_configurations(
            group_records,
            objectives,
            list((config.get("constraints") or {}).get("metrics") or []),
            comparisons,
        ),
        groups=group_records,
        comparisons=comparisons,
        cross_project=cross,
        sensitivity=sensitivity_analysis(
            data, [f["metric"] for f in focus], confidence=confidence, seed=seed
        ),
        pareto=pareto_analysis(groups, keys, objectives),
        convergence=convergence(
            data.analysed if not data.analysed.empty else ok,
            focus,
            adaptive=bool(config.get("adaptive_sampling")),
            startup_points=optimizer.get("startup_points"),
            varied=len(data.varied),
        ),
        validation=check_results(ok, groups, keys, data.validation_spec)
        if data.validation_spec
        else {"counts": {"ok": 0, "warn": 0, "violation": 0}, "checks": [], "rows": []},
        intermediate=intermediate_values(data.analysed, keys, objectives),
        reproducibility=_reproducibility(data),
        fidelity=fidelity_ladder(data, confidence=confidence),
    )


def _sweep_section(data: SweepData, objectives: list[dict[str, Any]]) -> dict[str, Any]:
    config = data.config
    return {
        "id": data.sweep_id,
        "name": config.get("name", data.sweep_id.rsplit("-", 1)[0]),
        "projects": sorted(data.frame["project_name"].dropna().unique().tolist()) if len(data.frame) else [],
        "parameters": [k.removeprefix("param.") for k in data.parameters],
        "varied": [k.removeprefix("param.") for k in data.varied],
        "metrics": [m.removeprefix("metric.") for m in data.metrics],
        "objectives": objectives,
        "adaptive_sampling": bool(config.get("adaptive_sampling", False)),
        "design": _design(config),
        "constraints": list((config.get("constraints") or {}).get("metrics") or []),
        "cross_project_analysis": bool(config.get("cross_project_analysis", False)),
        "repeats": config.get("repeats", 1),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _design(config: dict[str, Any]) -> str:
    """``adaptive`` (a model chooses the order), ``sampled`` (a random or Sobol sample, all run)
    or ``grid``."""
    if config.get("adaptive_sampling"):
        return "adaptive"
    ranges = (config.get("parameters") or {}).values()
    return "sampled" if any(isinstance(r, dict) and r.get("sample") for r in ranges) else "grid"


def _outcome(data: SweepData) -> dict[str, Any]:
    """How the sweep ended (its ``outcome.json``), with every key present."""
    stored = data.outcome
    return {
        "state": stored.get("state"),
        "reason": stored.get("reason")
        or "not recorded: the sweep may still be running, or its results were copied without outcome.json",
        "total": stored.get("total"),
        "never_started": stored.get("never_started"),
        "max_experiments": stored.get("max_experiments", data.config.get("max_experiments")),
        "max_duration_seconds": stored.get("max_duration_seconds"),
    }


def _summary(data: SweepData) -> dict[str, Any]:
    frame = data.frame
    if frame.empty:
        return {"rows": 0, "status_counts": {}, "failures": [], "cost": 0.0, "time": {}, "validation": {}}
    failed = frame[frame["status"] == "failed"]
    failures = []
    for error_class, part in failed.groupby(failed["error_class"].fillna("unknown")):
        failures.append(
            {
                "error_class": error_class,
                "count": len(part),
                "examples": [
                    {
                        "experiment_id": r["experiment_id"],
                        "project": r["project_name"],
                        "message": str(r["error_message"])[:300],
                    }
                    for _, r in part.head(3).iterrows()
                ],
            }
        )
    stamps = pd.to_datetime(frame["timestamp"], utc=True)
    run_seconds = pd.to_numeric(frame["execution_time"], errors="coerce").fillna(0)
    return {
        "rows": len(frame),
        "status_counts": {str(k): int(v) for k, v in frame["status"].value_counts().items()},
        "projects": {str(k): int(v) for k, v in frame["project_name"].value_counts().items()},
        "failures": failures,
        "cost": float(pd.to_numeric(frame["cost"], errors="coerce").fillna(0).sum()),
        "time": {
            "first_result": stamps.min().isoformat(),
            "last_result": stamps.max().isoformat(),
            "wall_seconds": float(
                (stamps.max() - stamps.min()).total_seconds()
                + (run_seconds.iloc[0] if len(run_seconds) else 0)
            ),
            "run_seconds_total": float(run_seconds.sum()),
        },
    }


def _reproducibility(data: SweepData) -> dict[str, Any]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    hashes = sorted(data.frame["reproducibility_hash"].dropna().astype(str)) if len(data.frame) else []
    return {
        "config": data.config,
        "code_versions": data.effective.get("code_versions") or {},
        "packages": versions,
        "reproducibility_hashes": {
            "count": len(set(hashes)),
            "digest": hashlib.sha256("\n".join(hashes).encode()).hexdigest() if hashes else "",
        },
    }


#: sections whose producers return only JSON-safe values (no NaN, no numpy scalars)
_SAFE_BY_CONSTRUCTION = frozenset({"groups", "comparisons", "pareto", "convergence"})
#: groups up to which the JSON form is indented
INDENT_UP_TO = 2_000
_PLAIN = frozenset({str, int, bool, type(None)})


def _json_safe(value: Any) -> Any:
    # Exact type checks first: a large sweep's document holds millions of plain values, and
    # this walk must not cost more than the analysis.
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict:
        return {k if type(k) is str else str(k): _json_safe(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


#: JSON Schema (draft 2020-12) of :meth:`SweepAnalysis.to_dict`; tests validate reports against it.
_GROUP = {
    "type": "object",
    "required": ["project", "parameters", "metric", "n", "mean", "stderr", "ci_low", "ci_high", "confidence"],
    "properties": {
        "project": {"type": "string"},
        "parameters": {"type": "object"},
        "metric": {"type": "string"},
        "n": {"type": "integer", "minimum": 1},
        "mean": {"type": ["number", "null"]},
        "std": {"type": ["number", "null"]},
        "stderr": {"type": ["number", "null"]},
        "ci_low": {"type": ["number", "null"]},
        "ci_high": {"type": ["number", "null"]},
        "confidence": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "method": {"enum": ["t", "wilson", "bootstrap", "reported"]},
    },
}
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "orchestrator sweep analysis",
    "type": "object",
    "required": [
        "schema_version",
        "sweep",
        "summary",
        "outcome",
        "best",
        "groups",
        "comparisons",
        "cross_project",
        "sensitivity",
        "pareto",
        "convergence",
        "validation",
        "intermediate",
        "reproducibility",
        "fidelity",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "sweep": {"type": "object", "required": ["id", "name", "projects", "parameters", "objectives"]},
        "summary": {"type": "object", "required": ["rows", "status_counts", "failures", "cost", "time"]},
        "outcome": {
            "type": "object",
            "required": ["state", "reason", "total", "never_started"],
            "properties": {"state": {"enum": ["completed", "cancelled", "timed_out", None]}},
        },
        "best": {
            "type": "object",
            "required": ["objectives", "feasibility"],
            "properties": {
                "objectives": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": [
                            "metric",
                            "goal",
                            "project",
                            "parameters",
                            "mean",
                            "ci_low",
                            "ci_high",
                            "n",
                            "feasible",
                            "metrics",
                            "runners_up",
                        ],
                    },
                },
                "feasibility": {
                    "type": "object",
                    "required": ["constraints", "points", "feasible", "unknown"],
                },
            },
        },
        "groups": {"type": "array", "items": _GROUP},
        "comparisons": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kind", "metric", "test", "p_value", "p_adjusted", "effect_size", "significant"],
                "properties": {"kind": {"enum": ["configuration", "projects"]}},
            },
        },
        "cross_project": {"type": "object", "required": ["metrics", "per_project", "pairs", "points"]},
        "sensitivity": {"type": "object", "required": ["indices", "length_scales"]},
        "pareto": {
            "type": "object",
            "required": ["objectives", "reference", "hypervolume", "front", "dominated"],
        },
        "convergence": {"type": "object"},
        "validation": {"type": "object", "required": ["counts", "checks", "rows"]},
        "intermediate": {"type": "object", "required": ["metric", "goal", "runs", "total", "stopped"]},
        "reproducibility": {"type": "object", "required": ["config", "code_versions", "packages"]},
        "fidelity": FIDELITY_SCHEMA,  # empty off a ladder
    },
}
