"""Cross-project comparison of a standardized metric, matched on shared parameter points.

Two projects that answer the same question (GHZ fidelity on a simulator, a classical
repetition-code model) are compared where both ran: the same values of the sweep's parameters.
Each shared point is one matched pair (the mean over its repeats), so the test is paired; the
p-values of every (metric, pair of projects) are corrected together with Benjamini-Hochberg.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.aggregate import aggregate, t_interval
from analysis.dataset import SweepData
from analysis.significance import Test, benjamini_hochberg, paired, two_sample


def compare_projects(
    frame: pd.DataFrame,
    metric: str,
    keys: Sequence[str] | None = None,
    *,
    test: Test = "welch",
    alpha: float = 0.05,
    confidence: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-project statistics of ``metric`` and pairwise tests between projects.

    Args:
        frame: result rows (only completed ones count).
        metric: metric name without the ``metric.`` prefix.
        keys: the columns that identify a parameter point (default: every ``param.*`` column).
        test: ``welch`` (paired t on shared points) or ``mannwhitney`` (Wilcoxon on them).
        alpha: false-discovery rate for ``significant``.
        confidence: level of the per-project intervals.

    Returns:
        ``(per_project, pairwise)``. Per project: ``project``, ``n``, ``n_points``, ``mean``,
        ``std``, ``ci_low``, ``ci_high``. Per pair ``a``/``b``: ``metric``, ``n_points``
        (shared), ``mean_diff`` (a - b), ``test``, ``statistic``, ``p_value``,
        ``p_adjusted`` (BH over the pairs), ``effect_size``, ``effect_size_kind``,
        ``significant``.
    """
    column = f"metric.{metric}"
    if keys is None:
        keys = [c for c in frame.columns if c.startswith("param.")]
    keys = list(keys)
    if column not in frame:
        return pd.DataFrame(), pd.DataFrame()
    ok = frame[(frame["status"] == "completed") & frame[column].notna()]
    per_project: list[dict[str, Any]] = []
    means: dict[Any, Any] = {}  # project -> point means (a Series), or None without keys
    for project, group in ok.groupby("project_name", sort=True):
        values = group[column].astype(float)
        n, mean, sd = len(values), values.mean(), values.std(ddof=1)
        low, high = t_interval(np.array([mean]), np.array([sd / np.sqrt(n)]), np.array([n]), confidence)
        means[project] = group.groupby(keys, dropna=False)[column].mean() if keys else None
        per_project.append(
            {
                "project": project,
                "n": n,
                "n_points": len(means[project]) if keys else 1,
                "mean": mean,
                "std": sd,
                "ci_low": float(low[0]),
                "ci_high": float(high[0]),
            }
        )
    pairs = []
    for a, b in itertools.combinations(sorted(means), 2):
        row: dict[str, Any] = {"metric": metric, "a": a, "b": b}
        shared = means[a].index.intersection(means[b].index) if keys else []
        if len(shared) >= 2:
            row |= paired(means[a].loc[shared].to_numpy(), means[b].loc[shared].to_numpy(), test)
        else:
            # One shared point (or none declared): compare the repeats there, unpaired.
            sa, sb = (ok[ok["project_name"] == p] for p in (a, b))
            if len(shared) == 1:
                point = shared[0] if isinstance(shared[0], tuple) else (shared[0],)
                sa, sb = (s[(s[keys] == point).all(axis=1)] for s in (sa, sb))
            row |= two_sample(sa[column].to_numpy(float), sb[column].to_numpy(float), test)
        row["n_points"] = len(shared)
        pairs.append(row)
    pairwise = pd.DataFrame(pairs)
    if not pairwise.empty:
        pairwise["p_adjusted"] = benjamini_hochberg(pairwise["p_value"])
        pairwise["significant"] = pairwise["p_adjusted"] < alpha
    return pd.DataFrame(per_project), pairwise


def standardized_metrics(data: SweepData) -> list[str]:
    """Metrics the projects declared standardized (fidelities, probabilities) that at least two
    projects report; the objectives' metrics when nothing is declared."""
    declared: set[str] = set()
    for spec in data.standardized.values():
        declared |= set(spec.get("fidelity") or {}) | set(spec.get("probabilities") or [])
    ok = data.completed
    candidates = sorted(declared) or [o["metric"] for o in data.objectives]
    shared = []
    for name in candidates:
        column = f"metric.{name}"
        if column in ok and ok.loc[ok[column].notna(), "project_name"].nunique() >= 2:
            shared.append(name)
    return shared


def cross_project(
    data: SweepData, *, test: Test = "welch", alpha: float = 0.05, confidence: float = 0.95
) -> dict[str, Any]:
    """The cross-project comparison of a sweep, BH-corrected over every metric and pair.

    Returns:
        ``{"metrics", "per_project", "pairs", "points"}``: ``pairs`` as :func:`compare_projects`
        gives them (a paired test over the shared points), ``points`` one test per shared point
        (:func:`point_tests`), each list BH-corrected over all its tests; empty lists with fewer
        than two projects.
    """
    if data.completed.empty or data.completed["project_name"].nunique() < 2:
        return {"metrics": [], "per_project": [], "pairs": [], "points": []}
    metrics = standardized_metrics(data)
    per_project, pairs = [], []
    for name in metrics:
        projects, pairwise = compare_projects(
            data.completed, name, data.parameters, test=test, alpha=alpha, confidence=confidence
        )
        per_project.append(projects.assign(metric=name))
        pairs.append(pairwise)
    table = pd.concat(pairs, ignore_index=True) if pairs else pd.DataFrame()
    if not table.empty:
        table["p_adjusted"] = benjamini_hochberg(table["p_value"])
        table["significant"] = table["p_adjusted"] < alpha
    points = point_tests(data, metrics, confidence=confidence)
    if not points.empty:
        points["p_adjusted"] = benjamini_hochberg(points["p_value"])
        points["significant"] = points["p_adjusted"] < alpha
    return {
        "metrics": metrics,
        "per_project": records(pd.concat(per_project, ignore_index=True)) if per_project else [],
        "pairs": records(table),
        "points": records(points),
    }


def point_tests(data: SweepData, metrics: Sequence[str], *, confidence: float = 0.95) -> pd.DataFrame:
    """One test per (metric, pair of projects, shared point), from each side's mean and error.

    Shot-estimated probabilities (Wilson rows) use a two-proportion z-test with Cohen's h;
    metrics with repeats on both sides use Welch's t-test with Hedges' g; anything else (one run,
    no known error) gets no p-value. ``parameters`` is the point.
    """
    from scipy import stats

    keys = data.parameters
    groups = aggregate(
        data.completed,
        keys,
        [f"metric.{m}" for m in metrics],
        confidence=confidence,
        probabilities=data.probability_metrics,
    )
    rows = []
    for metric, part in groups.groupby("metric", sort=True):
        by_project = {p: g.set_index(keys) for p, g in part.groupby("project", sort=True)}
        for a, b in itertools.combinations(sorted(by_project), 2):
            shared = by_project[a].index.intersection(by_project[b].index)
            for point in shared:
                x, y = by_project[a].loc[point], by_project[b].loc[point]
                row: dict[str, Any] = {
                    "metric": metric,
                    "a": a,
                    "b": b,
                    "parameters": dict(
                        zip((k.removeprefix("param.") for k in keys), _tuple(point), strict=True)
                    ),
                    "mean_a": x["mean"],
                    "mean_b": y["mean"],
                    "mean_diff": x["mean"] - y["mean"],
                    "test": None,
                    "statistic": float("nan"),
                    "p_value": float("nan"),
                    "effect_size": float("nan"),
                    "effect_size_kind": None,
                }
                if x["method"] == "wilson" and y["method"] == "wilson":
                    se = np.hypot(x["stderr"], y["stderr"])
                    row |= {"test": "two_proportion_z", "effect_size_kind": "cohens_h"}
                    row["effect_size"] = 2 * (np.arcsin(np.sqrt(x["mean"])) - np.arcsin(np.sqrt(y["mean"])))
                    if se > 0:
                        row["statistic"] = row["mean_diff"] / se
                        row["p_value"] = float(2 * stats.norm.sf(abs(row["statistic"])))
                elif x["n"] > 1 and y["n"] > 1:
                    res = stats.ttest_ind_from_stats(
                        x["mean"], x["std"], x["n"], y["mean"], y["std"], y["n"], equal_var=False
                    )
                    pooled = np.sqrt(
                        ((x["n"] - 1) * x["std"] ** 2 + (y["n"] - 1) * y["std"] ** 2) / (x["n"] + y["n"] - 2)
                    )
                    row |= {"test": "welch", "effect_size_kind": "hedges_g"}
                    row["statistic"], row["p_value"] = float(res.statistic), float(res.pvalue)
                    if pooled > 0:
                        row["effect_size"] = row["mean_diff"] / pooled * (1 - 3 / (4 * (x["n"] + y["n"]) - 9))
                rows.append(row)
    return pd.DataFrame(rows)


def _tuple(value: Any) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def records(frame: pd.DataFrame, parameters: Sequence[str] = ()) -> list[dict[str, Any]]:
    """JSON-safe rows: NaN becomes None, numpy scalars become Python ones.

    Args:
        frame: the table.
        parameters: ``param.*`` columns gathered into one ``parameters`` mapping per row (their
            prefix dropped), as the JSON form gives a point.
    """
    if frame is None or frame.empty:
        return []
    # column by column: ``tolist`` gives Python scalars at C speed; only floats need NaN cleaned
    nested = [c for c in parameters if c in frame.columns]
    flat = [c for c in frame.columns if c not in set(nested)]
    names = [str(c) for c in flat]
    rows = [
        dict(zip(names, row, strict=True)) for row in zip(*(_column(frame[c]) for c in flat), strict=True)
    ]
    if parameters and "parameters" not in names:
        keys = [str(c).removeprefix("param.") for c in nested]
        points = zip(*(_column(frame[c]) for c in nested), strict=True) if nested else [()] * len(rows)
        for row, point in zip(rows, points, strict=True):
            row["parameters"] = dict(zip(keys, point, strict=True))
    return rows


def _column(series: pd.Series) -> list[Any]:
    if series.dtype.kind == "f":
        return finite(series.to_numpy())
    if series.dtype.kind in "iub":
        return series.tolist()
    values = series.tolist()
    missing = series.isna().to_numpy()
    if missing.any():
        values = [None if m else v for v, m in zip(values, missing, strict=True)]
    if any(isinstance(v, np.generic | float) for v in values):  # most object columns hold strings
        values = [_plain(v) for v in values]
    return values


def finite(values: Any) -> list[Any]:
    """Plain floats for JSON: NaN and infinities become None (vectorised)."""
    array = np.asarray(values, dtype=float)
    out = array.astype(object)
    out[~np.isfinite(array)] = None
    return out.tolist()


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
