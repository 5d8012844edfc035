"""Significance tests with effect sizes, and the Benjamini-Hochberg correction.

Two independent samples: Welch's t-test (effect size Hedges' g) or Mann-Whitney U (effect size
the rank-biserial correlation). Paired samples (two projects on the same parameter points): the
paired t-test (Cohen's d_z) or the Wilcoxon signed-rank test (matched-pairs rank-biserial).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

Test = Literal["welch", "mannwhitney"]


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """Standardised mean difference ``(mean a - mean b) / pooled sd``, small-sample corrected."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return float("nan")
    pooled = math.sqrt(((na - 1) * np.var(a, ddof=1) + (nb - 1) * np.var(b, ddof=1)) / (na + nb - 2))
    if pooled == 0:
        return float("nan")
    correction = 1 - 3 / (4 * (na + nb) - 9)
    return float((np.mean(a) - np.mean(b)) / pooled * correction)


def two_sample(a: Sequence[float], b: Sequence[float], test: Test = "welch") -> dict[str, Any]:
    """Compare two independent samples.

    Returns:
        ``test``, ``n_a``, ``n_b``, ``mean_diff`` (a - b), ``statistic``, ``p_value``,
        ``effect_size`` and ``effect_size_kind``; NaN statistics where a sample is too small.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out: dict[str, Any] = {
        "test": test,
        "n_a": len(x),
        "n_b": len(y),
        "mean_diff": float(np.mean(x) - np.mean(y)) if len(x) and len(y) else float("nan"),
        "statistic": float("nan"),
        "p_value": float("nan"),
    }
    if test == "welch":
        out["effect_size_kind"] = "hedges_g"
        out["effect_size"] = hedges_g(x, y)
        if len(x) > 1 and len(y) > 1 and (np.ptp(x) > 0 or np.ptp(y) > 0):
            res = stats.ttest_ind(x, y, equal_var=False)
            out["statistic"], out["p_value"] = float(res.statistic), float(res.pvalue)
    elif test == "mannwhitney":
        out["effect_size_kind"] = "rank_biserial"
        out["effect_size"] = float("nan")
        if len(x) and len(y):
            res = stats.mannwhitneyu(x, y, alternative="two-sided")
            out["statistic"], out["p_value"] = float(res.statistic), float(res.pvalue)
            out["effect_size"] = float(2 * res.statistic / (len(x) * len(y)) - 1)
    else:
        raise ValueError(f"unknown test '{test}'; use welch or mannwhitney")
    return out


def paired(a: Sequence[float], b: Sequence[float], test: Test = "welch") -> dict[str, Any]:
    """Compare matched samples (``a[i]`` and ``b[i]`` measured at the same point).

    ``welch`` selects the paired t-test here (the matched analogue), ``mannwhitney`` the
    Wilcoxon signed-rank test. Keys as :func:`two_sample`, with ``n_a == n_b`` the pairs.
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    out: dict[str, Any] = {
        "test": "paired_t" if test == "welch" else "wilcoxon",
        "n_a": n,
        "n_b": n,
        "mean_diff": float(d.mean()) if n else float("nan"),
        "statistic": float("nan"),
        "p_value": float("nan"),
        "effect_size": float("nan"),
        "effect_size_kind": "cohens_dz" if test == "welch" else "rank_biserial",
    }
    if n < 2 or not np.any(d):
        return out
    if test == "welch":
        sd = d.std(ddof=1)
        if sd > 0:
            res = stats.ttest_rel(a, b)
            out["statistic"], out["p_value"] = float(res.statistic), float(res.pvalue)
            out["effect_size"] = float(d.mean() / sd)
    else:
        res = stats.wilcoxon(d)
        out["statistic"], out["p_value"] = float(res.statistic), float(res.pvalue)
        ranks = stats.rankdata(np.abs(d[d != 0]))
        positive = ranks[d[d != 0] > 0].sum()
        out["effect_size"] = float((2 * positive - ranks.sum()) / ranks.sum())
    return out


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """BH-adjusted p-values (``scipy.stats.false_discovery_control``); NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        adjusted[finite] = stats.false_discovery_control(p[finite], method="bh")
    return adjusted


def compare_configurations(
    frame: pd.DataFrame,
    keys: Sequence[str],
    metric: str,
    goal: str = "maximize",
    *,
    test: Test = "welch",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Every parameter point of each project against that project's best point (by mean).

    Answers "is the best point really better than the others, or is it noise?" with one test
    per point, BH-corrected over all of them. Needs repeats: points with a single value get
    NaN p-values.

    Returns:
        One row per (project, point): the point's ``keys``, ``best`` (the best point's
        parameters), and the keys of :func:`two_sample` plus ``p_adjusted`` and ``significant``.
    """
    column = f"metric.{metric}"
    keys = list(keys)
    if column not in frame:
        return pd.DataFrame()
    data = frame.dropna(subset=[column])
    if test == "mannwhitney":
        return _configurations_by_rank(data, keys, column, goal, alpha)
    # Welch from per-point summary statistics: one vectorised call for every point.
    stats_ = data.groupby(["project_name", *keys], dropna=False, sort=True)[column].agg(
        ["count", "mean", "var"]
    )
    parts = []
    for _, part in stats_.groupby(level=0, sort=True):
        if len(part) < 2:
            continue
        best = part["mean"].idxmax() if goal == "maximize" else part["mean"].idxmin()
        b = part.loc[best]
        others = part.drop(index=best)
        n_a, n_b = float(b["count"]), others["count"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            res = stats.ttest_ind_from_stats(
                b["mean"],
                np.sqrt(b["var"]),
                n_a,
                others["mean"],
                np.sqrt(others["var"]),
                n_b,
                equal_var=False,
            )
            pooled = np.sqrt(((n_a - 1) * b["var"] + (n_b - 1) * others["var"]) / (n_a + n_b - 2))
            g = (b["mean"] - others["mean"]) / pooled * (1 - 3 / (4 * (n_a + n_b) - 9))
        out = others.index.to_frame(index=False).rename(columns={"project_name": "project"})
        out["best"] = [
            {k.removeprefix("param."): _plain(v) for k, v in zip(keys, best[1:], strict=True)}
        ] * len(out)
        out["test"], out["n_a"], out["n_b"] = "welch", int(n_a), others["count"].to_numpy()
        out["mean_diff"] = b["mean"] - others["mean"].to_numpy()
        out["statistic"], out["p_value"] = np.asarray(res.statistic, float), np.asarray(res.pvalue, float)
        out["effect_size"], out["effect_size_kind"] = np.asarray(g, float), "hedges_g"
        parts.append(out)
    return _corrected(pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(), alpha)


def _configurations_by_rank(
    data: pd.DataFrame, keys: list[str], column: str, goal: str, alpha: float
) -> pd.DataFrame:
    rows = []
    for project, part in data.groupby("project_name", sort=True):
        groups = {key: g[column].to_numpy() for key, g in part.groupby(keys, dropna=False, sort=True)}
        if len(groups) < 2:
            continue
        means = {key: v.mean() for key, v in groups.items()}
        best = (max if goal == "maximize" else min)(means, key=lambda k: means[k])
        best_t = best if isinstance(best, tuple) else (best,)
        for key, values in groups.items():
            if key != best:
                key_t = key if isinstance(key, tuple) else (key,)
                rows.append(
                    {
                        "project": project,
                        **dict(zip(keys, key_t, strict=True)),
                        "best": {
                            k.removeprefix("param."): _plain(v) for k, v in zip(keys, best_t, strict=True)
                        },
                        **two_sample(groups[best], values, "mannwhitney"),
                    }
                )
    return _corrected(pd.DataFrame(rows), alpha)


def _corrected(out: pd.DataFrame, alpha: float) -> pd.DataFrame:
    if not out.empty:
        out["p_adjusted"] = benjamini_hochberg(out["p_value"])
        out["significant"] = out["p_adjusted"] < alpha
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
