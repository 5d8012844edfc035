"""Early stopping: rules that judge a run from its intermediate values, and the share cap.

* A rule (``EarlyStoppingRule``) is a small strategy: given a running experiment's
  intermediate values and the curves of completed experiments, stop or go on. Today there is
  one, the median rule (Golovin et al., "Google Vizier", 2017): a run is stopped at step ``t``
  when its best value so far is worse than the median, over completed runs, of their running
  averages up to step ``t``. ``stopping_rule`` picks the sweep's rule from its options.
* Shots as fidelity: an experiment first runs at a share of its shots. It is promoted to full
  shots only when an optimistic bound (posterior mean minus ``beta`` standard deviations, after
  conditioning the GP on the low-shot value with its shot-noise variance) can still beat the
  incumbent; otherwise it stops with its low-shot row. That needs a model, so it lives with the
  GP optimizer; ``optimistic_bound`` is its arithmetic.
* Neither ever stops more than ``max_stopped_share`` of a sweep (``select_stops``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from orchestrator.optimizer.config import EarlyStoppingConfig
from orchestrator.optimizer.recommendation import EarlyStop


def finite_values(curve: Sequence[float | None]) -> list[float]:
    """The finite values of ``curve`` as floats (a report may hold None or NaN)."""
    return [float(v) for v in curve if v is not None and math.isfinite(float(v))]


class EarlyStoppingRule(ABC):
    """Decides from intermediate values whether a running experiment should stop now."""

    #: the reason recorded on a stopped run's row
    name: ClassVar[str]

    @abstractmethod
    def should_stop(
        self, curve: Sequence[float], completed: Sequence[Sequence[float]], *, sign: float = 1.0
    ) -> bool:
        """True to stop the run.

        Args:
            curve: the running experiment's intermediate values so far, one per step.
            completed: intermediate values of the sweep's completed experiments.
            sign: 1 when lower values are better, -1 when higher are.
        """


@dataclass(frozen=True)
class MedianRule(EarlyStoppingRule):
    """Stop a run whose best value so far is worse than the completed runs' median at its step.

    Args:
        grace_steps: values the run reports before it may be stopped.
        min_completed: completed curves needed before the rule applies.
    """

    name: ClassVar[str] = "median"

    grace_steps: int = 3
    min_completed: int = 5

    def should_stop(
        self, curve: Sequence[float], completed: Sequence[Sequence[float]], *, sign: float = 1.0
    ) -> bool:
        values = [sign * v for v in finite_values(curve)]
        t = len(values)
        if t == 0 or t < self.grace_steps:
            return False
        curves = [c for c in (finite_values(c) for c in completed) if c]
        if len(curves) < self.min_completed:
            return False
        running = [sign * float(np.mean(c[:t])) for c in curves]
        return min(values) > float(np.median(running))


def stopping_rule(options: EarlyStoppingConfig) -> EarlyStoppingRule | None:
    """The sweep's rule for runs that report intermediate values; None when none applies."""
    if not options.enabled or not options.median_rule:
        return None
    return MedianRule(grace_steps=options.grace_steps, min_completed=options.min_completed)


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


@dataclass(frozen=True)
class StopCandidate:
    """A run some rule would stop; ``margin`` ranks candidates (larger: surer) under the cap."""

    experiment_id: str
    reason: str
    margin: float = 0.0
    low_shot: bool = False  # a low-shot run: if the cap spares it, it is promoted instead


def select_stops(
    candidates: Sequence[StopCandidate], allowance: int
) -> tuple[tuple[EarlyStop, ...], tuple[str, ...]]:
    """Stop the surest ``allowance`` candidates; returns ``(stops, spared low-shot runs)``.

    A low-shot run the cap spares must run at its full shots after all.
    """
    ranked = sorted(candidates, key=lambda c: -c.margin)
    stops = tuple(EarlyStop(c.experiment_id, c.reason) for c in ranked[:allowance])
    spared = tuple(c.experiment_id for c in ranked[allowance:] if c.low_shot)
    return stops, spared
