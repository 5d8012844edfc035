"""Per-point statistics over repeats and the best points of a sweep."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.dataset import PARAM, RUNG, top_rungs


def param_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("param.")]


def summarize(frame: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean, standard error over repeats and count for each (project, parameter point).

    Only successful rows count; ``metrics`` are metric names without the ``metric.`` prefix
    (default: all). On a fidelity ladder, each project's top rung with results; its ``fidelity``
    parameter is no parameter.
    """
    ok = top_rungs(frame)
    ok = ok[ok["status"] == "completed"]
    if RUNG in ok and ok[RUNG].notna().any():
        ok = ok.drop(columns=[PARAM + RUNG], errors="ignore")
    names = (
        list(metrics)
        if metrics
        else [c.removeprefix("metric.") for c in ok.columns if c.startswith("metric.")]
    )
    keys = ["project_name", *param_columns(ok)]
    if ok.empty or not names:
        return pd.DataFrame(columns=keys)
    grouped = ok.groupby(keys, dropna=False)
    out = {}
    for name in names:
        col = ok[f"metric.{name}"] if f"metric.{name}" in ok else None
        if col is None:
            continue
        g = grouped[f"metric.{name}"]
        out[f"{name}_mean"] = g.mean()
        out[f"{name}_stderr"] = g.std(ddof=1) / np.sqrt(g.count())
        out[f"{name}_n"] = g.count()
    return pd.DataFrame(out).reset_index()


def best_points(frame: pd.DataFrame, metric: str, goal: str = "maximize", n: int = 5) -> pd.DataFrame:
    """The ``n`` best parameter points by the mean of ``metric`` over repeats."""
    summary = summarize(frame, [metric])
    if summary.empty or f"{metric}_mean" not in summary:
        return summary
    return summary.sort_values(f"{metric}_mean", ascending=goal == "minimize").head(n).reset_index(drop=True)
