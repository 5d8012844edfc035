"""Intermediate values: the curve each run reported while it ran, and where early stopping cut it.

A project that declares ``report`` leaves its curve in the row's ``extra.intermediate``; a run
the sweep's rule stopped has the status ``early_stopped`` and its message names the rule. The
report draws the curves with the stops marked, so a reader can see whether the runs stopped were
the ones that would have ended worse.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd

MAX_RUNS = 300  # curves kept in the analysis: every stopped run first, then the others, evenly
_RULE = re.compile(r"by the (\w+) rule")


def _curve(extra: Any) -> list[float]:
    if not isinstance(extra, str) or "intermediate" not in extra:
        return []
    try:
        values = json.loads(extra).get("intermediate") or []
    except (ValueError, AttributeError):
        return []
    return [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]


def intermediate_values(
    frame: pd.DataFrame, parameters: list[str], objectives: list[dict[str, Any]]
) -> dict[str, Any]:
    """The reported curves of a sweep's runs.

    Args:
        frame: every row of the sweep.
        parameters: the point's parameter columns.
        objectives: the sweep's objectives; the first names the curve's metric.

    Returns:
        ``{"metric", "goal", "runs", "total", "stopped"}``; each run: ``experiment_id``,
        ``project``, ``parameters``, ``status``, ``values``, ``stopped_at`` (the step where it was
        stopped, else null) and ``rule``. Empty ``runs`` when no run reported a curve.
    """
    goal = objectives[0]["goal"] if objectives else None
    metric = objectives[0]["metric"] if objectives else "value"
    empty: dict[str, Any] = {"metric": metric, "goal": goal, "runs": [], "total": 0, "stopped": 0}
    if frame.empty or "extra" not in frame:
        return empty
    rows = frame[frame["status"].isin(["completed", "early_stopped"])]
    curves = rows["extra"].map(_curve)
    rows, curves = rows[curves.map(len) > 0], curves[curves.map(len) > 0]
    if rows.empty:
        return empty
    stopped = rows["status"] == "early_stopped"
    kept = list(rows.index[stopped][:MAX_RUNS])
    others = rows.index[~stopped]
    room = min(MAX_RUNS - len(kept), len(others))
    order = kept + [others[i] for i in np.unique(np.linspace(0, len(others) - 1, room).astype(int))]
    runs = []
    for index in order:
        row = rows.loc[index]
        values = curves.loc[index]
        is_stopped = row["status"] == "early_stopped"
        found = _RULE.search(str(row.get("error_message") or "")) if is_stopped else None
        runs.append(
            {
                "experiment_id": str(row["experiment_id"]),
                "project": str(row["project_name"]),
                "parameters": {p.removeprefix("param."): _plain(row[p]) for p in parameters if p in row},
                "status": str(row["status"]),
                "values": values,
                "stopped_at": len(values) if is_stopped else None,
                "rule": found.group(1) if found else None,
            }
        )
    return {"metric": metric, "goal": goal, "runs": runs, "total": len(rows), "stopped": int(stopped.sum())}


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
