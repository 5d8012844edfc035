"""The Wilson score interval of a shot-estimated probability, in one place: the adapters give
each run's (``standardize: probabilities``), the analysis each point's over its pooled shots.

Closed form rather than ``scipy.stats.binomtest``: a probability a project reports (a fidelity,
a success rate) times its shots is seldom a whole number of successes, and workers need not
import SciPy for it. For whole counts the two agree to 1e-12 (``tests/adapters``).
"""

from __future__ import annotations

import math
from statistics import NormalDist


def z_value(confidence: float) -> float:
    """Two-sided standard-normal quantile: 1.95996... for 0.95."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(p: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a probability ``p`` estimated from ``n`` shots.

    Unlike the normal interval it stays inside [0, 1] and does not collapse to zero width
    when ``p`` is 0 or 1, which shot-estimated fidelities often are.

    Raises:
        ValueError: ``n`` is not positive or ``p`` is outside [0, 1].
    """
    if n <= 0:
        raise ValueError("the Wilson interval needs a positive shot count")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability {p} is outside [0, 1]")
    z = z_value(confidence)
    z2n = z * z / n
    denom = 1 + z2n
    center = (p + z2n / 2) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / denom
    # at p = 0 or 1 the bound is exactly 0 or 1; rounding would leave 1e-19 there
    low = 0.0 if p == 0 else max(0.0, center - half)
    high = 1.0 if p == 1 else min(1.0, center + half)
    return low, high
