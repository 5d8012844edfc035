from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import best_points, compare_projects, summarize


def _frame() -> pd.DataFrame:
    rows = []
    for project, shift in (("a", 0.0), ("b", 0.2)):
        for x in (1, 2, 3):
            for repeat, noise in enumerate((-0.01, 0.01, 0.0)):
                rows.append(
                    {
                        "project_name": project,
                        "status": "completed",
                        "param.x": x,
                        "metric.f": 0.5 + 0.1 * x + shift + noise,
                        "repeat": repeat,
                    }
                )
    rows.append({"project_name": "a", "status": "failed", "param.x": 9, "metric.f": np.nan, "repeat": 0})
    return pd.DataFrame(rows)


def test_summarize_means_and_standard_errors_over_repeats() -> None:
    summary = summarize(_frame(), ["f"])
    row = summary[(summary["project_name"] == "a") & (summary["param.x"] == 2)].iloc[0]
    assert row["f_mean"] == pytest.approx(0.7)
    assert row["f_stderr"] == pytest.approx(0.01 / np.sqrt(3))  # sd 0.01 over 3 repeats
    assert row["f_n"] == 3
    assert 9 not in summary["param.x"].values  # failed rows do not count


def test_best_points_respects_goal() -> None:
    assert best_points(_frame(), "f", "maximize", 1).iloc[0]["param.x"] == 3
    assert best_points(_frame(), "f", "minimize", 1).iloc[0]["param.x"] == 1


def test_compare_projects_detects_the_shift() -> None:
    per_project, pairs = compare_projects(_frame(), "f")
    means = dict(zip(per_project["project"], per_project["mean"], strict=True))
    assert means["b"] - means["a"] == pytest.approx(0.2)
    assert pairs.iloc[0]["mean_diff"] == pytest.approx(-0.2) and pairs.iloc[0]["p_value"] < 0.05
