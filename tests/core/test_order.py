"""The walk a sweep's fill cursor takes: a bijection of positions and points, in index order or
spread over the space (adaptive sweeps)."""

from __future__ import annotations

import numpy as np
import pytest

from core.order import WalkOrder


@pytest.mark.parametrize("size", [1, 2, 3, 10, 1_000, 1_000_003, 10**8, 3 * 2**31 + 7])
def test_the_scrambled_walk_visits_every_point_once_and_maps_back(size: int) -> None:
    walk = WalkOrder(size, scrambled=True, seed=11)
    for lo in (0, max(0, size - 50_000)):
        points = walk.points(lo, lo + 50_000)
        assert len(np.unique(points)) == len(points) and points.min() >= 0 and points.max() < size
        assert (walk.positions(points) == np.arange(lo, lo + len(points))).all()


def test_index_order_is_the_identity() -> None:
    walk = WalkOrder(1_000, scrambled=False)
    assert (walk.points(10, 20) == np.arange(10, 20)).all()
    assert (walk.positions(np.asarray([5, 999])) == [5, 999]).all()


def test_any_stretch_of_the_scrambled_walk_spreads_over_each_axis() -> None:
    """A 100 x 100 x 100 grid (last axis fastest): the first 100 positions of index order all
    sit at x = 0, y = 0; the walk's cover every tenth of each axis."""
    walk = WalkOrder(100**3, scrambled=True, seed=3)
    for lo in (0, 123_456):
        points = walk.points(lo, lo + 100)
        for stride in (10_000, 100, 1):
            deciles = (points // stride) % 100 // 10
            assert len(np.unique(deciles)) == 10, (lo, stride)
