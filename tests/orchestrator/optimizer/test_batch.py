"""Batch-aware scoring: what is in flight is never suggested again, nor twice in one batch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from orchestrator.optimizer import GPOptimizer
from tests.orchestrator.optimizer.conftest import make_sweep, result

# A sweep lists each value once (a value listed twice is refused): the "twins" below, the same
# parameters under another index, are what the optimizer's refinement points can coincide with.
PARAMS = {"x": [0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.9], "y": {"start": 0.0, "stop": 1.0, "num": 15}}


def _value(p: dict[str, Any]) -> float:
    return (p["x"] - 0.5) ** 2 + (p["y"] - 0.5) ** 2 + 0.1 * math.sin(9 * p["y"])


def _key(p: dict[str, Any]) -> tuple[float, float]:
    return (round(float(p["x"]), 9), round(float(p["y"]), 9))


def _state(opt: GPOptimizer, done: list[int]) -> list[dict[str, Any]]:
    return [result(i, opt.space.point(i), {"value": _value(opt.space.point(i))}) for i in done]


def test_batch_never_duplicates_in_flight_points() -> None:
    config = make_sweep(
        PARAMS, optimizer={"startup_points": 5, "batch_size": 8, "refinement": True, "refinement_points": 3}
    )
    opt = GPOptimizer(config)
    size = opt.space.size
    done = [0, 20, 40, 60, 80, 100]
    # in flight: the two best-looking points of the current model, so a naive ranking would pick them
    first = opt.analyze_results(_state(opt, done), np.setdiff1d(np.arange(size), done))
    in_flight = np.asarray(first.top(2))
    pending = np.setdiff1d(np.arange(size), np.r_[done, in_flight])
    # the same points are also still pending under other indices (another repeat)
    twins = [
        i
        for i in range(size)
        if i not in in_flight and _key(opt.space.point(i)) in {_key(opt.space.point(j)) for j in in_flight}
    ]
    pending = np.union1d(pending, np.r_[in_flight, twins])

    rec = opt.analyze_results(_state(opt, done), pending, in_flight, previous=first)

    flying = {_key(opt.space.point(int(i))) for i in in_flight}
    scored = [(s, _key(opt.space.point(i))) for i, s in rec.priority_adjustments.items()]
    scored += [(s, _key(p)) for p, s in zip(rec.refinement_points, rec.refinement_scores, strict=True)]
    head = [key for _, key in sorted(scored, reverse=True)[: config.optimizer.batch_size]]
    assert len(rec.refinement_points) >= 1
    assert not flying & set(head)
    assert len(head) == len(set(head))  # no two suggestions of one batch are the same point
    # in-flight points still get a score (the lead rewrites every pending entry) but rank last,
    # with the other repeats of points already chosen
    ranked = rec.top(len(rec.priority_adjustments))
    bottom = len(in_flight) + len(twins) + config.optimizer.batch_size
    assert min(ranked.index(int(i)) for i in in_flight) >= len(ranked) - bottom


def test_every_pending_index_gets_a_score() -> None:
    config = make_sweep(PARAMS, optimizer={"startup_points": 4, "candidate_shortlist": 20})
    opt = GPOptimizer(config)
    done = [1, 30, 61, 90]
    pending = np.setdiff1d(np.arange(opt.space.size), done)
    rec = opt.analyze_results(_state(opt, done), pending, np.array([5, 6]))
    assert set(rec.priority_adjustments) == set(pending.tolist())
    scores = np.asarray(list(rec.priority_adjustments.values()))
    assert np.all((scores > 0) & (scores <= 1))
    assert len(set(scores.tolist())) == len(scores)
