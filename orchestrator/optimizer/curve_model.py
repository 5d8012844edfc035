"""Where a reported curve is heading: ``a + b * exp(-t / tau)`` fitted to it, with an interval.

The early-stopping rules compare a run with its peers at the same step. That is unfair to a slow
starter whose curve is still falling steeply when its peers have levelled off: it may cross them
and end best. Before a run is stopped, its curve's end is predicted here, and the run is stopped
only when even the optimistic end of that prediction loses against the peers' predicted ends.

The fit is a profile over ``tau`` (a log grid), linear least squares for ``a`` and ``b >= 0`` at
each ``tau``: cheap (about a millisecond: at most ``MAX_POINTS`` values, evenly spaced over a
longer curve), no optimizer that can fail to converge. The interval is the profile-likelihood one: every ``tau`` whose fit
is within ``z**2`` noise variances of the best is plausible, and the optimistic end is the lowest
``a - z * se(a)`` over them. A curve that has not bent yet leaves large ``tau`` plausible, whose
asymptote lies far below: such a run is not stopped until its curve shows where it levels off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: fewest values a curve needs for a prediction (3 parameters and one degree of freedom for noise)
MIN_POINTS = 4
#: the slowest time constant considered, in steps seen: a curve bending slower cannot be told
#: from a line, and a line has no end
TAU_REACH = 4.0
#: values fitted at most (evenly spaced over a longer curve)
MAX_POINTS = 60
#: share of a curve's variance the fit must explain for its shape to count: below it the curve is
#: mostly noise, and no model can see a crossing coming (the rule alone decides, as Optuna's do)
MIN_EXPLAINED = 0.9


@dataclass(frozen=True)
class EndPrediction:
    """A curve's predicted end (signed: lower is better): ``point`` and its ``optimistic`` bound."""

    point: float
    optimistic: float


def predict_end(values: Sequence[float], *, z: float = 2.0) -> EndPrediction | None:
    """Fit ``a + b * exp(-t / tau)`` (``b >= 0``: an improving curve) to ``values`` at steps
    1..n; None with fewer than ``MIN_POINTS`` values or when the fit explains less than
    ``MIN_EXPLAINED`` of the curve's variance (a curve that is mostly noise).

    Args:
        values: the curve, signed so that lower is better.
        z: the interval's width, in standard deviations of the noise around the fit.
    """
    y = np.asarray(values, dtype=float)
    n = len(y)
    if n < MIN_POINTS or not np.isfinite(y).all():
        return None
    t = np.arange(1, n + 1, dtype=float)
    if n > MAX_POINTS:  # a long curve: evenly spaced steps keep a report's fit about a millisecond
        keep = np.unique(np.linspace(0, n - 1, MAX_POINTS).round().astype(int))
        t, y = t[keep], y[keep]
    taus = _TAUS[_TAUS <= TAU_REACH * n]
    e = np.exp(-t[None, :] / taus[:, None])  # one row per tau
    # the 2x2 normal equations of every tau at once: [[n, se], [se, see]] (a, b) = (sy, sey)
    m = len(y)
    se, see, sy, sey = e.sum(1), (e * e).sum(1), y.sum(), e @ y
    det = m * see - se * se
    ok = det > 1e-12 * (m + see) ** 2
    safe = np.where(ok, det, 1.0)
    a = np.where(ok, (see * sy - se * sey) / safe, sy / m)
    b = np.where(ok, (m * sey - se * sy) / safe, 0.0)
    inv00 = np.where(ok, see / safe, 1.0 / m)
    flat = b < 0  # a worsening curve: the mean is where it stays
    a, b, inv00 = np.where(flat, sy / m, a), np.where(flat, 0.0, b), np.where(flat, 1.0 / m, inv00)
    resid = y[None, :] - a[:, None] - b[:, None] * e
    sse = (resid * resid).sum(1)
    best = int(np.argmin(sse))
    total = float(((y - y.mean()) ** 2).sum())
    if total > 0 and sse[best] > (1.0 - MIN_EXPLAINED) * total:
        return None  # noise hides the shape: nothing to predict from
    # noise: the best fit's residual variance, never below a trace of the curve's range (an exact
    # curve must not make every other tau implausible by rounding alone)
    var = max(float(sse[best]) / max(m - 3, 1), (1e-3 * float(np.ptp(y))) ** 2, 1e-24)
    plausible = sse <= sse[best] + z * z * var
    optimistic = float(np.min((a - z * np.sqrt(var * inv00))[plausible]))
    point = float(a[best])
    return EndPrediction(point=point, optimistic=min(optimistic, point))


#: the time constants tried (steps): fine enough that an exact curve is fitted almost exactly
_TAUS = np.geomspace(0.3, 3000.0, 400)
