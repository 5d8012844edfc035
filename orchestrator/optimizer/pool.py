"""The candidate pool a refit scores: never the whole space, a bounded sample of it.

A sweep's pending sets hold only what runs next; most of a large space is the range past the
fill cursor, never enumerated. A refit scores (at most ``size`` points):

* the experiments pending now (they are re-scored in place);
* the grid neighbourhoods of the best results so far and of the last incumbent: where the model
  most likely finds the next improvement;
* a space-filling sample of the points not yet materialised: the next run of positions of the
  fill cursor's walk, a low-discrepancy sequence of indices for adaptive sweeps
  (:class:`core.order.WalkOrder`), so the coverage share keeps drawing from the whole space.

The best of the pool that are not materialised become the optimizer's picks (``picks``), which
the coordinator's next fill materialises with the reuse check.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import numpy as np

from core.config import SweepConfiguration
from core.order import WalkOrder
from core.space import ParameterSpace

#: default points a refit scores (``settings.candidate_pool``)
POOL_SIZE = 50_000
#: best results whose neighbourhoods join the pool
NEIGHBOURHOODS = 8


def best_points(config: SweepConfiguration, observations: Iterable[dict[str, Any]], n: int) -> list[int]:
    """The point indices of the ``n`` best completed results by the first objective."""
    if not config.objectives:
        return []
    first = config.objectives[0]
    sign = -1.0 if first.goal == "maximize" else 1.0
    ranked = [
        (sign * float(value), int(o["index"]))
        for o in observations
        if o.get("status") == "completed"
        and isinstance(value := (o.get("metrics") or {}).get(first.metric), (int, float))
        and o.get("index") is not None
    ]
    return [index for _, index in sorted(ranked)[:n]]


def neighbourhood(space: ParameterSpace, points: np.ndarray, cap: int) -> np.ndarray:
    """Grid neighbours of ``points``: every step of -1, 0, +1 per axis while that is small, else
    steps of 1 and 2 along each axis; at most ``cap`` points."""
    if not len(points) or not space.axes:
        return np.zeros(0, dtype=np.int64)
    sizes = np.asarray([axis.size for axis in space.axes], dtype=np.int64)
    strides = np.asarray(space._strides, dtype=np.int64)  # noqa: SLF001 - the mixed radix of the product
    coords = (np.asarray(points, dtype=np.int64)[:, None] // strides) % sizes
    d = len(sizes)
    if 3**d <= 729:
        steps = np.asarray(list(itertools.product((-1, 0, 1), repeat=d)), dtype=np.int64)
    else:
        eye = np.eye(d, dtype=np.int64)
        steps = np.vstack([eye, -eye, 2 * eye, -2 * eye])
    moved = coords[:, None, :] + steps[None, :, :]
    inside = np.all((moved >= 0) & (moved < sizes), axis=2)
    found = (moved[inside] * strides).sum(axis=1)
    return np.unique(found)[:cap]


def candidate_pool(
    space: ParameterSpace,
    order: WalkOrder,
    cursor: int,
    pending: np.ndarray,
    near: np.ndarray,
    picked: Any,
    size: int = POOL_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """The points a refit scores, and which of them are not materialised yet (picks may come
    only from those).

    Args:
        space: the sweep's space (constraints are checked here).
        order: the walk of its fill cursor; ``cursor`` its position.
        pending: point indices pending now (always in the pool).
        near: points whose neighbourhoods join the pool (the best results, the incumbent).
        picked: ``picked(points) -> bool array``: materialised ahead of the cursor already.
        size: the pool's bound (pending points beyond it still come in).
    """
    pending = np.unique(np.asarray(pending, dtype=np.int64))
    room = max(0, size - len(pending))
    around = neighbourhood(space, near, cap=room // 4)
    around = around[order.positions(around) >= cursor]  # behind the cursor: run or in line
    walk = order.points(cursor, cursor + max(0, room - len(around)))
    fresh = np.unique(np.concatenate([around, walk]))
    fresh = fresh[space.valid_mask(fresh)] if len(fresh) else fresh
    fresh = fresh[~picked(fresh)] if len(fresh) else fresh
    fresh = np.setdiff1d(fresh, pending)
    return np.concatenate([pending, fresh]), fresh
