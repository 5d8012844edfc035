"""Early-stopping rules, as pure functions the optimizer applies.

* Median stopping (Golovin et al., "Google Vizier", 2017): a run that reports intermediate values
  is stopped at step ``t`` when its best value so far is worse than the median, over completed
  runs, of their running averages up to step ``t``.
* Shots as fidelity: an experiment first runs at a share of its shots. It is promoted to full
  shots only when an optimistic bound (posterior mean minus ``beta`` standard deviations, after
  conditioning the GP on the low-shot value with its shot-noise variance) can still beat the
  incumbent; otherwise it stops with its low-shot row.
* Neither ever stops more than ``max_stopped_share`` of a sweep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def median_rule_stops(
    curve: Sequence[float],
    completed: Sequence[Sequence[float]],
    *,
    sign: float = 1.0,
    grace_steps: int = 3,
    min_completed: int = 5,
) -> bool:
    """True if the median rule stops a run with intermediate values ``curve``.

    Args:
        curve: the running experiment's intermediate values so far.
        completed: intermediate values of completed experiments of the same sweep.
        sign: 1 when lower values are better, -1 when higher are.
        grace_steps: values the run reports before it may be stopped.
        min_completed: completed curves needed before the rule applies.
    """
    values = [sign * float(v) for v in curve if v is not None and math.isfinite(float(v))]
    t = len(values)
    if t == 0 or t < grace_steps:
        return False
    curves = [[float(v) for v in c if v is not None and math.isfinite(float(v))] for c in completed]
    curves = [c for c in curves if c]
    if len(curves) < min_completed:
        return False
    running = [sign * float(np.mean(c[:t])) for c in curves]
    return min(values) > float(np.median(running))


def promotion_stops(
    prior_mean: float, prior_var: float, observed: float, noise_var: float, best: float, *, beta: float = 2.0
) -> bool:
    """True if a low-fidelity result should not be promoted to full shots (minimization units).

    Args:
        prior_mean: GP mean at the point before seeing the low-shot value.
        prior_var: GP variance there.
        observed: the low-shot value.
        noise_var: its shot-noise variance.
        best: the incumbent.
        beta: width of the optimistic bound in standard deviations.
    """
    return optimistic_bound(prior_mean, prior_var, observed, noise_var, beta=beta) > best


def optimistic_bound(
    prior_mean: float, prior_var: float, observed: float, noise_var: float, *, beta: float = 2.0
) -> float:
    """Posterior mean minus ``beta`` standard deviations after one noisy observation."""
    gain = prior_var / (prior_var + noise_var) if prior_var + noise_var > 0 else 0.0
    mean = prior_mean + gain * (observed - prior_mean)
    sd = math.sqrt(max(prior_var * (1.0 - gain), 0.0))
    return mean - beta * sd


def stop_allowance(max_share: float, sweep_size: int, already_stopped: int) -> int:
    """How many more experiments may be stopped without exceeding ``max_share`` of the sweep."""
    return max(0, int(math.floor(max_share * sweep_size + 1e-9)) - already_stopped)
