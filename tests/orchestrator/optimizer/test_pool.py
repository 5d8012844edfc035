"""The candidate pool a refit scores: bounded, never what the cursor passed or a refit picked."""

from __future__ import annotations

import numpy as np

from core.order import WalkOrder
from core.space import IntRange, ParameterSpace
from orchestrator.optimizer.pool import candidate_pool, neighbourhood


def _space(side: int = 1000) -> ParameterSpace:
    return ParameterSpace(
        {"x": IntRange(kind="int", start=0, stop=side - 1), "y": IntRange(kind="int", start=0, stop=side - 1)}
    )


def test_neighbourhood_is_the_grid_cells_around_a_point() -> None:
    space = _space(10)
    around = neighbourhood(space, np.asarray([5 * 10 + 5, 0]), cap=100)
    expected = {x * 10 + y for x in (4, 5, 6) for y in (4, 5, 6)} | {0, 1, 10, 11}
    assert set(around.tolist()) == expected, "a corner keeps the neighbours inside the grid"


def test_the_pool_is_bounded_and_holds_nothing_materialised_but_what_is_pending() -> None:
    space, walk, cursor = _space(), WalkOrder(1_000_000, scrambled=True, seed=1), 20_000
    pending = walk.points(cursor - 100, cursor)  # materialised by the cursor and still pending
    behind = walk.points(0, 10)  # run or in flight
    picked = walk.points(cursor + 5, cursor + 8)  # materialised ahead of the cursor by a refit
    points, fresh = candidate_pool(
        space, walk, cursor, pending, behind, lambda p: np.isin(p, picked), size=5_000
    )
    assert 4_900 <= len(points) <= 5_000 and len(np.unique(points)) == len(points)
    assert set(pending.tolist()) <= set(points.tolist()) and not set(fresh.tolist()) & set(pending.tolist())
    assert (walk.positions(fresh) >= cursor).all(), "nothing the cursor passed comes back"
    assert not set(fresh.tolist()) & set(picked.tolist()), "nor a point picked before"
    near_best = set(neighbourhood(space, behind, cap=10_000).tolist()) & set(fresh.tolist())
    assert near_best, "the neighbourhoods of the best results are in the pool"
