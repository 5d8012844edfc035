"""The statistics on data whose answers are known in closed form."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import (
    aggregate,
    benjamini_hochberg,
    expected_best_random,
    grid_sensitivity,
    hypervolume,
    paired,
    pareto_mask,
    t_interval,
    two_sample,
    wilson,
)
from analysis.convergence import best_so_far
from core.intervals import wilson_interval


def test_t_interval_matches_the_textbook_value() -> None:
    # 1..5: mean 3, sd sqrt(2.5), t_{0.975, 4} = 2.776445
    low, high = t_interval(np.array([3.0]), np.array([np.sqrt(2.5 / 5)]), np.array([5]), 0.95)
    assert low[0] == pytest.approx(3 - 2.776445 * np.sqrt(0.5), abs=1e-6)
    assert high[0] == pytest.approx(3 + 2.776445 * np.sqrt(0.5), abs=1e-6)


def test_wilson_agrees_with_the_closed_form() -> None:
    for k, n in ((0, 20), (5, 10), (97, 100), (1000, 1000)):
        assert wilson(k, n, 0.95) == pytest.approx(wilson_interval(k / n, n, 0.95), abs=1e-9)


def _rows(values: dict[float, list[float]], **extra: float) -> pd.DataFrame:
    return pd.DataFrame(
        [{"project_name": "p", "param.x": x, "metric.m": v, **extra} for x, vs in values.items() for v in vs]
    )


def test_aggregate_reports_n_mean_stderr_and_interval_per_point() -> None:
    out = aggregate(_rows({1.0: [1, 2, 3, 4, 5], 2.0: [7.0]}), ["param.x"], ["metric.m"], confidence=0.9)
    first, single = out.iloc[0], out.iloc[1]
    assert (first["n"], first["mean"], first["stderr"]) == (5, 3.0, pytest.approx(np.sqrt(0.5)))
    half = stats.t.ppf(0.95, 4) * np.sqrt(0.5)
    assert (first["ci_low"], first["ci_high"]) == (pytest.approx(3 - half), pytest.approx(3 + half))
    assert first["confidence"] == 0.9 and first["method"] == "t"
    assert single["n"] == 1 and np.isnan(single["ci_low"])  # no interval from one run


def test_aggregate_pools_shots_for_declared_probabilities() -> None:
    frame = _rows({1.0: [0.5, 0.7]}, **{"param.shots": 100.0})
    out = aggregate(frame, ["param.x"], ["metric.m"], probabilities={"p": ({"m"}, "shots")})
    row = out.iloc[0]
    assert row["method"] == "wilson" and row["mean"] == pytest.approx(0.6)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_interval(0.6, 200))


def test_bootstrap_interval_on_request_brackets_the_mean() -> None:
    rng = np.random.default_rng(1)
    frame = _rows({1.0: list(rng.exponential(1.0, 40))})
    row = aggregate(frame, ["param.x"], ["metric.m"], method="bootstrap").iloc[0]
    assert row["method"] == "bootstrap" and row["ci_low"] < row["mean"] < row["ci_high"]


def test_benjamini_hochberg_known_values() -> None:
    adjusted = benjamini_hochberg([0.01, 0.04, 0.03, 0.005, float("nan")])
    assert adjusted[:4] == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert np.isnan(adjusted[4])


def test_effect_sizes() -> None:
    a, b = np.array([1.0, 2, 3, 4, 5]), np.array([3.0, 4, 5, 6, 7])
    welch = two_sample(a, b)
    # pooled sd sqrt(2.5); Hedges' correction 1 - 3/(4*10-9)
    assert welch["effect_size"] == pytest.approx(-2 / np.sqrt(2.5) * (1 - 3 / 31))
    assert welch["p_value"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert two_sample(a + 10, b, "mannwhitney")["effect_size"] == 1.0  # every a above every b
    assert np.isnan(paired(b, a)["effect_size"])  # constant differences: no spread, no d_z
    d = paired([1.0, 2, 4], [0.0, 0, 1])  # differences 1, 2, 3: mean 2, sd 1
    assert d["effect_size"] == pytest.approx(2.0) and d["test"] == "paired_t"


def test_hypervolume_known_values() -> None:
    staircase = np.array([[1.0, 3], [2, 2], [3, 1]])
    assert hypervolume(staircase, [4, 4], ["minimize", "minimize"]) == pytest.approx(6.0)
    # the same, maximised: mirror the points and the reference
    assert hypervolume(-staircase, [-4, -4], ["maximize", "maximize"]) == pytest.approx(6.0)
    assert hypervolume(np.zeros((1, 3)), [1, 2, 3], ["minimize"] * 3) == pytest.approx(6.0)
    # two boxes of 4 overlapping in 2
    two = np.array([[1.0, 0, 0], [0, 1, 0]])
    assert hypervolume(two, [2, 2, 2], ["minimize"] * 3) == pytest.approx(6.0)
    assert hypervolume(np.array([[5.0, 5]]), [4, 4], ["minimize"] * 2) == 0.0


def test_hypervolume_matches_monte_carlo_in_three_objectives() -> None:
    rng = np.random.default_rng(0)
    points = rng.random((12, 3))
    sample = rng.random((200_000, 3))
    dominated = (points[None, :, :] <= sample[:, None, :]).all(axis=2).any(axis=1)
    assert hypervolume(points, [1, 1, 1], ["minimize"] * 3) == pytest.approx(dominated.mean(), abs=0.01)


def test_pareto_mask_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    values = rng.random((60, 2))
    goals = ["maximize", "minimize"]
    mask = pareto_mask(values, goals)
    for i, j in itertools.product(range(60), repeat=2):
        if values[j, 0] >= values[i, 0] and values[j, 1] <= values[i, 1] and (values[j] != values[i]).any():
            assert not mask[i]
    assert mask.any()
    for i in np.flatnonzero(~mask):
        assert any(
            values[j, 0] >= values[i, 0] and values[j, 1] <= values[i, 1] and (values[j] != values[i]).any()
            for j in range(60)
        )


def test_expected_best_of_random_picks_is_exact() -> None:
    values = np.array([1.0, 2.0, 3.0, 7.0])
    expected = expected_best_random(values, 5)
    for k in range(1, 5):
        brute = np.mean([max(c) for c in itertools.combinations(values, k)])
        assert expected[k - 1] == pytest.approx(brute)
    assert expected[4] == 7.0  # pool exhausted
    assert expected_best_random(values, 2, "minimize")[1] == pytest.approx(
        np.mean([min(c) for c in itertools.combinations(values, 2)])
    )


def test_best_so_far_follows_completion_order() -> None:
    frame = pd.DataFrame(
        {
            "status": ["completed"] * 4 + ["failed"],
            "metric.m": [1.0, 3.0, 2.0, 5.0, 9.0],
            "timestamp": pd.to_datetime([4, 1, 2, 3, 0], unit="s", utc=True),
            "index": range(5),
            "execution_time": [1.0] * 5,
            "cost": [0.5, 0.5, None, 0.5, 0.5],
        }
    )
    trace = best_so_far(frame, "m")
    assert trace["value"].tolist() == [3.0, 2.0, 5.0, 1.0]  # by timestamp; the failure ignored
    assert trace["best"].tolist() == [3.0, 3.0, 5.0, 5.0]
    assert trace["cumulative_cost"].tolist() == [0.5, 0.5, 1.0, 1.5]
    assert trace["elapsed_seconds"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_grid_sensitivity_of_an_exact_function() -> None:
    # y = x1 + 2 * x1 * x2 on a 3 x 3 grid, no noise: known ANOVA decomposition
    rows = [
        {"param.x1": a, "param.x2": b, "param.x3": c, "metric.y": a + 2 * a * b}
        for a, b, c in itertools.product([-1.0, 0.0, 1.0], repeat=3)
    ]
    frame = pd.DataFrame(rows)
    result = {e["parameter"]: e for e in grid_sensitivity(frame, ["param.x1", "param.x2", "param.x3"], "y")}
    # Var(x1) = 2/3, Var(2 x1 x2) = 4 * (2/3)^2 = 16/9, total 22/9; x2 alone explains nothing
    assert result["x1"]["first_order"] == pytest.approx((2 / 3) / (22 / 9))
    assert result["x2"]["first_order"] == pytest.approx(0.0, abs=1e-12)
    assert result["x2"]["total"] == pytest.approx((16 / 9) / (22 / 9))
    assert result["x1"]["total"] == pytest.approx(1.0)
    assert result["x3"]["total"] == pytest.approx(0.0, abs=1e-12)
    assert result["x1"]["first_order_ci"] == [None, None]  # no repeats: no interval claimed
