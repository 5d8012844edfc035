"""The answer a report opens with: the best configuration of each objective, and feasibility.

The best point of an objective is the point (project, parameters) whose mean over its repeats is
best, among the points that meet the sweep's metric constraints (``constraints.metrics``,
evaluated on the point's means). It comes with its interval, the other metrics at that point,
the next best points, and how many points the comparisons could not tell apart from it.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from core.expressions import Expression

RUNNERS_UP = 4


def _point_key(project: str, parameters: dict[str, Any]) -> str:
    return project + "\x00" + repr(sorted(parameters.items()))


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _summary(group: dict[str, Any]) -> dict[str, Any]:
    return {k: _clean(group.get(k)) for k in ("mean", "stderr", "ci_low", "ci_high", "n", "method")}


def feasibility(
    groups: list[dict[str, Any]], constraints: list[str]
) -> tuple[dict[str, bool | None], dict[str, Any]]:
    """Which points meet every metric constraint, judged on their means.

    Returns:
        ``(verdicts, summary)``: per point key, True / False / None (a constraint names a metric
        the point lacks); the summary: ``constraints``, ``points``, ``feasible``, ``unknown``.
    """
    points: dict[str, dict[str, Any]] = {}
    for g in groups:
        key = _point_key(g["project"], g["parameters"])
        values = points.setdefault(key, dict(g["parameters"]))
        if g["mean"] is not None:
            values[g["metric"]] = g["mean"]
    parsed = [Expression(text) for text in constraints]
    verdicts: dict[str, bool | None] = {}
    for key, values in points.items():
        verdict: bool | None = True
        for expression in parsed:
            if any(name not in values for name in expression.names):
                verdict = None
                continue
            try:
                holds = bool(expression.evaluate(values))
            except (TypeError, ValueError, ZeroDivisionError, ArithmeticError):
                holds = False
            if not holds:
                verdict = False
                break
        verdicts[key] = verdict
    summary = {
        "constraints": list(constraints),
        "points": len(points),
        "feasible": sum(v is True for v in verdicts.values()),
        "unknown": sum(v is None for v in verdicts.values()),
    }
    return verdicts, summary


def best_configurations(
    groups: list[dict[str, Any]],
    objectives: list[dict[str, Any]],
    constraints: list[str],
    comparisons: list[dict[str, Any]],
) -> dict[str, Any]:
    """The ``best`` section of the analysis.

    Args:
        groups: the aggregated groups (``SweepAnalysis.groups``).
        objectives: ``[{"metric", "goal"}]``.
        constraints: the sweep's metric constraints (``fidelity >= 0.9``).
        comparisons: the configuration comparisons (each point against the best, BH-corrected).

    Returns:
        ``{"objectives": [...], "feasibility": {...}}``. One entry per objective (and per project
        in a sweep of several): ``metric``, ``goal``, ``project``, ``parameters``, ``mean``,
        ``stderr``, ``ci_low``, ``ci_high``, ``n``, ``method``, ``feasible`` (None without
        constraints), ``metrics`` (the other metrics at the point), ``runners_up`` and
        ``indistinguishable`` (points not significantly different from it; None without tests).
    """
    verdicts, summary = feasibility(groups, constraints)
    frame = pd.DataFrame(groups)
    entries: list[dict[str, Any]] = []
    for objective in objectives:
        metric, goal = objective["metric"], objective["goal"]
        rows = frame[(frame["metric"] == metric) & frame["mean"].notna()] if len(frame) else frame
        if rows.empty:
            continue
        rows = rows.assign(
            _key=[_point_key(p, q) for p, q in zip(rows["project"], rows["parameters"], strict=True)]
        )
        rows = rows.assign(_ok=rows["_key"].map(lambda k: verdicts.get(k) is not False))
        ranked = rows.sort_values(["_ok", "mean"], ascending=[False, goal == "minimize"], kind="stable")
        projects = list(dict.fromkeys(ranked["project"]))
        for project in projects if len(projects) > 1 else projects[:1]:
            mine = ranked[ranked["project"] == project]
            top = mine.iloc[0].to_dict()
            entries.append(
                {
                    "metric": metric,
                    "goal": goal,
                    "project": project,
                    "parameters": top["parameters"],
                    **_summary(top),
                    "confidence": _clean(top.get("confidence")),
                    "feasible": verdicts.get(top["_key"]) if constraints else None,
                    "metrics": {
                        g["metric"]: _summary(g)
                        for g in groups
                        if g["metric"] != metric and _point_key(g["project"], g["parameters"]) == top["_key"]
                    },
                    "runners_up": [
                        {"parameters": r["parameters"], **_summary(r)}
                        for r in mine.iloc[1 : 1 + RUNNERS_UP].to_dict("records")
                    ],
                    "indistinguishable": _ties(comparisons, metric, project, top["parameters"]),
                }
            )
    if len({e["project"] for e in entries}) > 1:  # the overall best of each objective first
        order = {o["metric"]: i for i, o in enumerate(objectives)}
        sign = {o["metric"]: 1 if o["goal"] == "minimize" else -1 for o in objectives}
        entries.sort(
            key=lambda e: (order[e["metric"]], e["feasible"] is False, sign[e["metric"]] * e["mean"])
        )
    return {"objectives": entries, "feasibility": summary}


def _ties(comparisons: list[dict[str, Any]], metric: str, project: str, best: dict[str, Any]) -> int | None:
    """Points of ``project`` whose difference from ``best`` is not significant (None: no tests,
    or the tests were against another point, as when the best by mean is infeasible)."""
    tested = [
        c
        for c in comparisons
        if c.get("kind") == "configuration"
        and c.get("metric") == metric
        and c.get("project") == project
        and c.get("best") == best
    ]
    if not tested:
        return None
    return sum(1 for c in tested if c.get("p_adjusted") is not None and not c.get("significant"))
