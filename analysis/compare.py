"""Cross-project comparison of a standardized metric (e.g. fidelity on a 0..1 scale)."""

from __future__ import annotations

import itertools

import pandas as pd
from scipy import stats


def compare_projects(frame: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-project statistics of ``metric`` and pairwise Welch t-tests between projects.

    Returns ``(per_project, pairwise)``: per project the count, mean, standard deviation and
    95 % confidence interval of the mean; per pair the mean difference and its p-value.
    """
    column = f"metric.{metric}"
    ok = frame[(frame["status"] == "completed") & frame.get(column, pd.Series(dtype=float)).notna()]
    rows, samples = [], {}
    for project, group in ok.groupby("project_name"):
        values = group[column].astype(float)
        samples[project] = values
        n, mean, sd = len(values), values.mean(), values.std(ddof=1)
        half = stats.t.ppf(0.975, n - 1) * sd / n**0.5 if n > 1 else float("nan")
        rows.append(
            {
                "project": project,
                "n": n,
                "mean": mean,
                "std": sd,
                "ci_low": mean - half,
                "ci_high": mean + half,
            }
        )
    pairs = []
    for a, b in itertools.combinations(sorted(samples), 2):
        if len(samples[a]) > 1 and len(samples[b]) > 1:
            test = stats.ttest_ind(samples[a], samples[b], equal_var=False)
            pairs.append(
                {
                    "a": a,
                    "b": b,
                    "mean_diff": samples[a].mean() - samples[b].mean(),
                    "p_value": float(test.pvalue),
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(pairs)
