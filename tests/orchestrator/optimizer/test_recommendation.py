"""Recommendations round-trip through JSON; bad adaptive settings fail with field and fix."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from orchestrator.optimizer import (
    GPOptimizer,
    OptimizationRecommendation,
    OptimizerConfig,
    check_adaptive_sweep,
)
from tests.orchestrator.optimizer.conftest import make_sweep, result

PARAMS = {"x": {"start": -1.0, "stop": 1.0, "num": 21}, "mode": {"choices": ["a", "b"]}}


def _value(p: dict) -> float:
    return (p["x"] - 0.3) ** 2 + (0.0 if p["mode"] == "a" else 0.5)


def _recommendation() -> OptimizationRecommendation:
    config = make_sweep(PARAMS, optimizer={"startup_points": 4, "refinement": True})
    opt = GPOptimizer(config)
    done = [0, 9, 17, 25, 33, 41]
    results = [result(i, opt.space.point(i), {"value": _value(opt.space.point(i))}) for i in done]
    pending = np.setdiff1d(np.arange(opt.space.size), done)
    previous = opt.analyze_results(results[:4], pending)
    return opt.analyze_results(results, pending, np.array([2]), previous=previous)


def test_recommendation_round_trips_through_json() -> None:
    rec = _recommendation()
    assert rec.phase == "model" and rec.promising_regions and rec.incumbent
    text = json.dumps(rec.to_dict())
    back = OptimizationRecommendation.from_dict(json.loads(text))
    assert back == rec
    small = rec.to_dict(include_priorities=False)
    assert small["priority_adjustments"] == {} and small["summary"] == rec.summary
    assert "incumbent" in rec.summary and "new since the last refit" in rec.summary


def test_results_as_a_dataframe_give_the_same_scores() -> None:
    config = make_sweep(PARAMS, optimizer={"startup_points": 4})
    space = config.space()
    done = [0, 9, 17, 25, 33, 41]
    rows = [result(i, space.point(i), {"value": _value(space.point(i))}) for i in done]
    flat = pd.DataFrame(
        [
            {
                "experiment_id": r["experiment_id"],
                "index": r["index"],
                "status": "completed",
                **r["parameters"],
                "metric.value": r["metrics"]["value"],
            }
            for r in rows
        ]
    )
    pending = np.setdiff1d(np.arange(space.size), done)
    a = GPOptimizer(config, space).analyze_results(rows, pending)
    b = GPOptimizer(config, space).analyze_results(flat, pending)
    assert a.priority_adjustments == b.priority_adjustments


def test_adaptive_sweep_with_fewer_points_than_the_startup_design_is_refused() -> None:
    config = make_sweep({"x": [1, 2, 3]}, optimizer={"startup_points": 5})
    with pytest.raises(InputError) as err:
        check_adaptive_sweep(config, source="sweep.yaml")
    assert err.value.field == "optimizer.startup_points"
    assert "set optimizer.startup_points to 3 or less" in err.value.message
    check_adaptive_sweep(make_sweep({"x": [1, 2, 3]}, optimizer={"startup_points": 3}))
    with pytest.raises(InputError, match=r"startup_points=6 \(the default"):
        check_adaptive_sweep(make_sweep({"x": [1, 2, 3]}))


def test_coverage_share_outside_the_unit_interval_is_refused() -> None:
    config = make_sweep(PARAMS)
    bad = config.model_copy(
        update={
            "optimizer": OptimizerConfig.model_construct(
                **{**OptimizerConfig.model_validate({}).model_dump(), "coverage_share": 1.5}
            )
        }
    )
    with pytest.raises(InputError) as err:
        check_adaptive_sweep(bad)
    assert err.value.field == "optimizer.coverage_share"


def test_objective_metric_no_project_produces_is_refused() -> None:
    config = make_sweep(PARAMS, objectives=["fidelity"])
    with pytest.raises(InputError) as err:
        check_adaptive_sweep(config, produced_metrics={"p": ["energy"]})
    assert err.value.field == "objectives[0].metric"
    assert "'fidelity'" in err.value.message
    check_adaptive_sweep(config, produced_metrics={"p": ["fidelity", "energy"]})


def test_sweep_without_objectives_is_ordered_space_filling() -> None:
    config = make_sweep(PARAMS, objectives=[])
    opt = GPOptimizer(config)
    rec = opt.analyze_results([], np.arange(opt.space.size))
    assert rec.phase == "space_filling"
    assert len(rec.priority_adjustments) == opt.space.size
