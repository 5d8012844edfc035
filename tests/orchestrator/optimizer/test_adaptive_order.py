"""The adaptive order finds a known optimum in far fewer experiments than random order."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from orchestrator.optimizer import GPOptimizer
from orchestrator.optimizer.recommendation import Coverage
from tests.orchestrator.optimizer.conftest import make_sweep, run_adaptive

GRID = {"x": {"start": 0.0, "stop": 1.0, "num": 25}, "y": {"start": 0.0, "stop": 1.0, "num": 25}}


def _fidelity(p: dict[str, Any]) -> float:
    # one smooth peak off-centre, with a ripple so the grid optimum is unique
    return math.exp(-((p["x"] - 0.62) ** 2 + 2.0 * (p["y"] - 0.27) ** 2) / 0.08) + 0.02 * math.sin(7 * p["x"])


def test_adaptive_order_finds_the_optimum_far_sooner_than_random_order() -> None:
    config = make_sweep(
        GRID,
        objectives=[{"metric": "value", "goal": "maximize"}],
        optimizer={"startup_points": 6, "coverage_share": 0.1},
        seed=3,
    )
    opt = GPOptimizer(config)
    values = {i: _fidelity(opt.space.point(i)) for i in range(opt.space.size)}
    best = max(values, key=values.get)  # type: ignore[arg-type]

    order = run_adaptive(opt, lambda p: _fidelity(p), lambda index: index == best, limit=120)

    assert order[-1] == best
    adaptive = len(order)
    random_position = int(np.flatnonzero(np.random.default_rng(3).permutation(opt.space.size) == best)[0]) + 1
    expected_random = (opt.space.size + 1) / 2  # 313 for 625 points
    # measured: the best of 625 grid points is run 8th; random order needs 313 on average
    assert adaptive * 5 < expected_random
    assert adaptive * 3 < random_position


def test_the_startup_order_spreads_the_first_points() -> None:
    config = make_sweep(GRID, optimizer={"startup_points": 8})
    opt = GPOptimizer(config)
    indices = np.arange(opt.space.size)
    rec = opt.analyze_results([], indices)
    assert rec.phase == "startup"
    scores = np.asarray([rec.priority_adjustments[i] for i in indices.tolist()])
    first = indices[np.argsort(-scores)[:8]]
    cols = opt.space.columns(first)
    pts = np.stack([cols["x"], cols["y"]], axis=1)
    gaps = np.linalg.norm(pts[:, None] - pts[None], axis=2) + np.eye(8) * 9
    assert gaps.min() > 0.15  # no two startup points crowd together
    assert len(set(scores.tolist())) == len(indices)  # a strict order: usable as sorted-set scores


def test_two_refits_of_the_same_state_give_the_same_scores() -> None:
    # two beats running at once by mistake must write identical priorities
    config = make_sweep(GRID, optimizer={"startup_points": 4})
    space = config.space()
    done = [0, 77, 300, 512, 624, 150]
    results = [
        {
            "experiment_id": f"e{i}",
            "index": i,
            "status": "completed",
            "parameters": space.point(i),
            "metrics": {"value": _fidelity(space.point(i))},
        }
        for i in done
    ]
    pending = np.setdiff1d(np.arange(space.size), done)
    a = GPOptimizer(config, space).analyze_results(results, pending, np.array([10]))
    b = GPOptimizer(config, space).analyze_results(results, pending, np.array([10]))
    assert a.phase == "model"
    assert a.priority_adjustments == b.priority_adjustments


def test_coverage_share_reserves_space_filling_picks() -> None:
    config = make_sweep(GRID, optimizer={"startup_points": 4, "coverage_share": 0.5, "batch_size": 8})
    opt = GPOptimizer(config)
    done = list(range(0, 625, 31))[:20]
    results = [
        {
            "experiment_id": f"e{i}",
            "index": i,
            "status": "completed",
            "parameters": opt.space.point(i),
            "metrics": {"value": _fidelity(opt.space.point(i))},
        }
        for i in done
    ]
    rec = opt.analyze_results(results, np.setdiff1d(np.arange(opt.space.size), done))
    # runs 21..28 of a 50% share, 4 of them the startup design: every other pick is space-filling
    assert rec.head is not None and rec.head.coverage == 4
    assert rec.coverage == Coverage(target_share=0.5, startup_points=4, runs=20, space_filling_runs=10)
    assert rec.coverage.share == 0.5
    assert "coverage 10/20" in rec.summary
