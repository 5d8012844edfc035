"""Metric standardization: Wilson intervals, fidelity checks, baselines, cost, repeats."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import binomtest

from adapters import ProjectAdapter
from adapters.metrics import relative_improvement, standardize, stderr_over_repeats
from core.intervals import wilson_interval, z_value
from core.project import StandardizeSpec


@pytest.mark.parametrize(
    "k, n, low, high",
    [
        (0, 10, 0.0, 0.2775),  # the classic zero-successes case: not [0, 0]
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),  # Newcombe (1998), example in most references
    ],
)
def test_wilson_interval_known_values(k: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(k / n, n)
    assert got == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize("k, n, confidence", [(3, 40, 0.95), (17, 20, 0.9), (500, 1000, 0.99), (1, 7, 0.8)])
def test_wilson_interval_matches_scipy(k: int, n: int, confidence: float) -> None:
    ref = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert wilson_interval(k / n, n, confidence) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_wilson_interval_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        wilson_interval(1.2, 10)
    with pytest.raises(ValueError):
        wilson_interval(0.5, 0)
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)


def test_fidelity_is_normalised_and_out_of_range_is_flagged_not_clipped() -> None:
    spec = StandardizeSpec(fidelity={"f": 1.0, "pct": 100.0, "missing": 1.0})
    out = standardize({"f": 1.03, "pct": 87.0}, {}, spec)
    assert out.metrics == {"f": 1.03, "pct": 0.87}
    assert [(f["metric"], f["value"]) for f in out.flags] == [("f", 1.03), ("missing", None)]


def test_probabilities_get_wilson_bounds_from_the_shot_parameter() -> None:
    spec = StandardizeSpec(probabilities=["p"], shots="n_shots")
    out = standardize({"p": 0.5}, {"n_shots": 10}, spec)
    assert (out.metrics["p_ci_low"], out.metrics["p_ci_high"]) == pytest.approx((0.2366, 0.7634), abs=5e-5)
    no_shots = standardize({"p": 0.5}, {}, spec)
    assert "p_ci_low" not in no_shots.metrics and "no shot count" in no_shots.flags[0]["problem"]
    bad = standardize({"p": -0.1}, {"n_shots": 10}, spec)
    assert "p_ci_low" not in bad.metrics and bad.flags[0]["value"] == -0.1


def test_relative_improvement_for_both_goals() -> None:
    assert relative_improvement(0.9, 0.6, "maximize") == pytest.approx(0.5)
    assert relative_improvement(-1.137, -1.117, "minimize") == pytest.approx(0.02 / 1.117)
    assert relative_improvement(-1.0, -1.117, "minimize") < 0
    spec = StandardizeSpec.model_validate(
        {"baselines": {"e": {"metric": "hf", "goal": "minimize"}, "q": {"value": 0.0}}}
    )
    out = standardize({"e": -1.2, "hf": -1.0, "q": 3.0}, {}, spec)
    assert out.metrics["e_rel_improvement"] == pytest.approx(0.2)
    assert "q_rel_improvement" not in out.metrics and out.flags[0]["problem"].startswith("baseline is 0")


def test_cost_per_shot_and_per_second() -> None:
    spec = StandardizeSpec.model_validate({"cost": {"per_task": 0.3, "per_shot": 0.001}})
    out = standardize({"f": 1.0}, {"shots": 100}, spec, seconds=2.0)
    assert out.cost == pytest.approx(0.4)
    assert out.metrics["cost_per_shot"] == pytest.approx(0.004)
    assert out.metrics["cost_per_second"] == pytest.approx(0.2)
    from_metric = standardize(
        {"usd": 1.5}, {"shots": 3}, StandardizeSpec.model_validate({"cost": {"metric": "usd"}})
    )
    assert from_metric.cost == 1.5 and from_metric.metrics["cost_per_shot"] == 0.5
    known = standardize({}, {"shots": 10}, StandardizeSpec(), seconds=4.0, cost=2.0)  # an executor's cost
    assert known.metrics == {"cost_per_shot": 0.2, "cost_per_second": 0.5}


def test_declarations_apply_in_execute(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    root = make_project("std", {"m.py": "def run(shots):\n    return {'fid': 1.02, 'p': 0.25}\n"})
    result = adapter_for(
        root,
        entry="m:run",
        standardize={"fidelity": ["fid"], "probabilities": ["p"], "cost": {"per_shot": 0.01}},
    ).execute_with_parameters({"shots": 100})
    assert result.status == "completed"
    assert result.metrics["fid"] == 1.02 and result.extra["flags"][0]["metric"] == "fid"
    assert result.metrics["p_ci_low"] < 0.25 < result.metrics["p_ci_high"]
    assert result.cost == pytest.approx(1.0) and result.metrics["cost_per_shot"] == pytest.approx(0.01)


def test_stderr_over_repeats() -> None:
    frame = pd.DataFrame(
        {
            "project": ["a"] * 4 + ["b"],
            "noise": [0.1, 0.1, 0.1, 0.2, 0.1],
            "fidelity": [0.9, 0.8, 0.7, 0.5, 0.6],
            "energy": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    out = stderr_over_repeats(frame, ["project", "noise"]).set_index(["project", "noise"])
    row = out.loc[("a", 0.1)]
    assert row["n_repeats"] == 3 and row["fidelity_mean"] == pytest.approx(0.8)
    assert row["fidelity_stderr"] == pytest.approx(0.1 / math.sqrt(3))
    assert row["energy_stderr"] == pytest.approx(1 / math.sqrt(3))
    assert math.isnan(out.loc[("a", 0.2)]["fidelity_stderr"])  # one repeat: no spread to estimate
    only = stderr_over_repeats(frame, ["project"], ["energy"])
    assert list(only.columns) == ["project", "n_repeats", "energy_mean", "energy_stderr"]
