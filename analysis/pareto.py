"""The Pareto front of two or more objectives, and the hypervolume it dominates.

Works on the mean of each objective over repeats at each (project, point). The hypervolume is
exact: a sweep over the last objective with the (m-1)-dimensional volume of each slab computed
recursively (fine for the fronts of real sweeps, up to hundreds of points in 3 objectives).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.compare import records


def _minimized(values: np.ndarray, goals: Sequence[str]) -> np.ndarray:
    signs = np.array([-1.0 if g == "maximize" else 1.0 for g in goals])
    return np.asarray(values, dtype=float) * signs


def pareto_mask(values: np.ndarray, goals: Sequence[str]) -> np.ndarray:
    """True for the non-dominated rows of ``values`` (n x m), each column maximised or minimised
    as ``goals`` says. Equal rows are all kept."""
    v = _minimized(values, goals)
    keep = np.zeros(len(v), dtype=bool)
    # In lexicographic order a point can only be dominated by one before it, and if a dominated
    # point dominates it so does a front point (dominance is transitive): so each point is
    # compared with the front found so far only, O(n * front) instead of O(n^2).
    front = np.empty((0, v.shape[1]))
    for i in np.lexsort(v.T[::-1]):
        if len(front) and np.any(np.all(front <= v[i], axis=1) & np.any(front < v[i], axis=1)):
            continue
        keep[i] = True
        front = np.vstack([front, v[i]])
    return keep


def hypervolume(values: np.ndarray, reference: Sequence[float], goals: Sequence[str]) -> float:
    """Volume of the objective space dominated by ``values`` and bounded by ``reference``.

    Points that do not strictly improve on the reference in every objective add nothing.
    """
    v = _minimized(values, goals)
    ref = _minimized(np.asarray(reference, dtype=float)[None, :], goals)[0]
    v = v[np.all(v < ref, axis=1)]
    return float(_hv(v, ref)) if len(v) else 0.0


def _hv(points: np.ndarray, ref: np.ndarray) -> float:
    if points.shape[1] == 1:
        return float(ref[0] - points[:, 0].min())
    points = points[pareto_mask(points, ["minimize"] * points.shape[1])]
    points = points[np.argsort(points[:, -1])]
    volume = 0.0
    for i in range(len(points)):
        upper = points[i + 1, -1] if i + 1 < len(points) else ref[-1]
        if upper > points[i, -1]:
            volume += _hv(points[: i + 1, :-1], ref[:-1]) * (upper - points[i, -1])
    return volume


def pareto_analysis(
    groups: pd.DataFrame, keys: Sequence[str], objectives: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The front of the per-point means in ``groups`` (as :func:`analysis.aggregate.aggregate`).

    Args:
        groups: long table with ``project``, the ``keys``, ``metric`` and ``mean``.
        keys: the parameter columns of a point.
        objectives: ``[{"metric": ..., "goal": ...}]``, two or more.

    Returns:
        ``objectives``, ``reference`` (the worst mean of each objective: the nadir of the points
        seen), ``hypervolume``, ``front`` and ``dominated`` (lists of ``{project, parameters,
        values}``); empty when there are fewer than two objectives.
    """
    empty: dict[str, Any] = {
        "objectives": [],
        "reference": [],
        "hypervolume": None,
        "front": [],
        "dominated": [],
    }
    if len(objectives) < 2 or groups.empty:
        return empty
    names = [o["metric"] for o in objectives]
    goals = [o["goal"] for o in objectives]
    # set_index + unstack, not pivot_table: pivot_table(dropna=False) allocates the full
    # cartesian product of every parameter's values.
    table = (
        groups[groups["metric"].isin(names)].set_index(["project", *keys, "metric"])["mean"].unstack("metric")
    )
    table = table.reindex(columns=names).dropna()
    if table.empty:
        return empty
    values = table.to_numpy(float)
    mask = pareto_mask(values, goals)
    reference = np.where(np.array(goals) == "maximize", values.min(axis=0), values.max(axis=0))

    # built column by column (see ``records``): a large sweep has tens of thousands of points
    index = table.index.to_frame(index=False)
    points = records(index, parameters=list(keys))
    rows = [
        {
            "project": point["project"],
            "parameters": point["parameters"],
            "values": dict(zip(names, row, strict=True)),
        }
        for point, row in zip(points, values.tolist(), strict=True)
    ]
    return {
        "objectives": [dict(o) for o in objectives],
        "reference": reference.tolist(),
        "hypervolume": _scalar(hypervolume(values[mask], reference, goals)),
        "front": [r for r, m in zip(rows, mask, strict=True) if m],
        "dominated": [r for r, m in zip(rows, mask, strict=True) if not m],
    }


def _scalar(value: Any) -> Any:
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and not np.isfinite(value) else value
