"""The order a sweep's points are materialised in, walked by a cursor of positions.

A sweep's pending state holds only the next few thousand experiments; the rest is the range of
positions past the fill cursor. Position ``p`` maps to a point of the lazy product in O(1) and
back, so the cursor needs no list of what it has passed:

* in index order (``p -> p``) for sweeps run in order;
* for adaptive sweeps, along the rank-1 lattice ``p -> (a * p + b) mod n`` with ``a / n`` near
  the golden ratio and coprime to ``n``: a bijection, and a low-discrepancy sequence of indices,
  so any run of positions (the first runs, the optimizer's space-filling share) spreads over the
  space instead of filling one corner of the grid.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from core.plan import SweepPlan

_GOLDEN = (math.sqrt(5) - 1) / 2
_INT64_SAFE = 2**31  # a * p stays below 2**62 in int64 up to this size


class WalkOrder:
    """Positions ``0..size-1`` <-> point indices of a sweep's product.

    Args:
        size: points in the product (before constraints).
        scrambled: the low-discrepancy lattice order (adaptive sweeps), else index order.
        seed: the sweep's seed (the lattice's offset).
    """

    def __init__(self, size: int, scrambled: bool, seed: int = 0) -> None:
        self.size = size
        self.a, self.b = 1, 0
        if scrambled and size > 2:
            a = max(1, round(size * _GOLDEN))
            while math.gcd(a, size) != 1:
                a += 1
            self.a, self.b = a % size, (seed * 0x9E3779B1) % size
        self._a_inv = pow(self.a, -1, size) if size > 1 else 1

    def points(self, lo: int, hi: int) -> np.ndarray:
        """The point indices at positions ``lo..hi-1``."""
        return self._map(np.arange(lo, min(hi, self.size), dtype=np.int64), self.a, self.b)

    def positions(self, points: np.ndarray) -> np.ndarray:
        """The positions of ``points`` (each below ``size``)."""
        points = np.asarray(points, dtype=np.int64)
        if self.a == 1 and self.b == 0:
            return points
        return self._map(points - self.b, self._a_inv, 0)

    def _map(self, x: np.ndarray, a: int, b: int) -> np.ndarray:
        if a == 1 and b == 0:
            return x
        if self.size <= _INT64_SAFE:
            return (x % self.size * a + b) % self.size
        big = (x.astype(object) % self.size * a + b) % self.size  # exact beyond int64's headroom
        return big.astype(np.int64)


def walk_order(plan: SweepPlan) -> WalkOrder:
    """The order a sweep's points are materialised in (its fill cursor walks it)."""
    return WalkOrder(plan.space.size, plan.config.adaptive_sampling, plan.config.seed)
