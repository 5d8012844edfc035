"""Refinement points stay inside the declared bounds, the parameter constraints and a region."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from orchestrator.optimizer import GPOptimizer
from tests.orchestrator.optimizer.conftest import make_sweep, result

PARAMS = {
    "gamma": {"start": 0.0, "stop": 2.0, "num": 9},
    "beta": {"start": 0.0, "stop": 1.0, "num": 9},
    "rate": {"kind": "log", "start": 1e-3, "stop": 1.0, "num": 4},
    "depth": {"kind": "int", "start": 1, "stop": 6},
    "mixer": {"choices": ["x", "xy"]},
}


def _energy(p: dict[str, Any]) -> float:
    return (
        (p["gamma"] - 1.1) ** 2
        + (p["beta"] - 0.45) ** 2
        + 0.1 * (math.log10(p["rate"]) + 1.5) ** 2
        + 0.05 * abs(p["depth"] - 3)
        + (0.0 if p["mixer"] == "xy" else 0.3)
    )


def test_refinement_points_respect_bounds_constraints_and_regions() -> None:
    config = make_sweep(
        PARAMS,
        constraints={"parameters": ["beta <= gamma", "gamma + beta <= 2.2"]},
        optimizer={"startup_points": 8, "refinement": True, "refinement_points": 4, "batch_size": 6},
        seed=5,
    )
    opt = GPOptimizer(config)
    space = opt.space
    valid = np.concatenate(list(space.iter_valid()))
    rng = np.random.default_rng(0)
    done = rng.choice(valid, 30, replace=False)
    results = [result(int(i), space.point(int(i)), {"value": _energy(space.point(int(i)))}) for i in done]
    pending = np.setdiff1d(valid, done)

    rec = opt.analyze_results(results, pending, pending[:2])

    assert rec.refinement_points, "expected the optimizer to add points at this stage"
    assert len(rec.refinement_points) <= 4
    assert len(rec.refinement_scores) == len(rec.refinement_points)
    for p in rec.refinement_points:
        assert set(p) == set(space.names)
        assert 0.0 <= p["gamma"] <= 2.0 and 0.0 <= p["beta"] <= 1.0
        assert 1e-3 <= p["rate"] <= 1.0
        assert isinstance(p["depth"], int) and 1 <= p["depth"] <= 6
        assert p["mixer"] in ("x", "xy")
        assert p["beta"] <= p["gamma"] + 1e-12 and p["gamma"] + p["beta"] <= 2.2 + 1e-12
        assert any(region.contains(p) for region in rec.promising_regions)
        # a new point, not a copy of one already run
        assert all(p != r["parameters"] for r in results)
    best = [r for r in rec.promising_regions if r.kind == "best"]
    assert best and best[0].rank == 0
    assert rec.incumbent is not None
    incumbent = rec.incumbent.parameters
    for name, value in best[0].center.items():  # the best region is built around the incumbent
        assert value == incumbent[name] if isinstance(value, str) else math.isclose(value, incumbent[name])


def test_refinement_is_off_by_default() -> None:
    config = make_sweep(PARAMS, optimizer={"startup_points": 8})
    opt = GPOptimizer(config)
    done = np.arange(0, opt.space.size, 37)[:20]
    results = [
        result(int(i), opt.space.point(int(i)), {"value": _energy(opt.space.point(int(i)))}) for i in done
    ]
    rec = opt.analyze_results(results, np.setdiff1d(np.arange(opt.space.size), done))
    assert rec.phase == "model" and rec.refinement_points == ()
