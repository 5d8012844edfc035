"""Early stopping: rules that judge a run from its intermediate values, and the share cap.

* A rule (``EarlyStoppingRule``) is a small strategy, chosen by ``optimizer.early_stopping.rule``:

  - ``median``: a run is stopped at step ``t`` when its best value so far is worse than the median
    of its peers' best values at step ``t`` (like with like: where curves share a large early fall,
    a peer's running average trails its current value by more than the spread of final values).
    ``compare: running_average`` compares with the peers' running averages instead (Golovin et
    al., "Google Vizier", 2017), which smooths noisy curves;
  - ``percentile``: the same against another percentile (25: a run must be in the best quarter);
  - ``asha`` (Li et al., "Massively parallel hyperparameter tuning", 2020): rungs at
    ``grace_steps * reduction_factor**k`` steps; a run reaching a rung goes on only while it is in
    the best ``1/reduction_factor`` of every run that reached that rung, stopped or not.

  The peers at step ``t`` are the completed curves once ``min_completed`` of them reach it; before
  that, every run that reached ``t`` (running, stopped or complete), once ``min_peers`` have (as
  ASHA's rungs do). With ``curve_model`` on, where the model sees a curve's shape
  (``curve_model.predict_end``), the rules judge its end instead of its current value: a run stops
  only when even the optimistic end of its curve is worse than the same quantile of its peers'
  optimistic ends at the same step. A slow starter that would cross its peers goes on; a fast
  starter levelling off above where they are heading stops, even while it leads. No run is judged at or past the last step of the longest completed curve (before
  one completes: of the furthest any other run reached), so a final report is never judged.

  The decision is made by the worker at each report, against every worker's data in Redis: the
  rule says what to ask (``at_report``: a ``ReportQuery``) and what a completed curve leaves behind
  (``completed_entries``), and the store answers in one atomic step (a per-step sorted set, so a
  quantile or a rank is O(log n)). ``should_stop`` is the same rule over plain lists of completed
  curves, for the optimizer's ``should_early_stop`` and for tests.
* Shots as fidelity: an experiment first runs at a share of its shots. It is promoted to full
  shots as soon as its rung (the low-shot runs) has ``min_completed`` members and it is in the
  best ``1/reduction_factor`` of them, and stopped otherwise; and it is stopped when an
  optimistic bound cannot beat the incumbent the refit publishes. ``optimistic_bound`` is that
  bound's arithmetic.
* Nothing ever stops more than ``max_stopped_share`` of a sweep: the store enforces the cap
  atomically for every worker; ``select_stops`` applies it inside one refit.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from core.optimizer_config import EarlyStoppingConfig
from orchestrator.optimizer.curve_model import MIN_POINTS, predict_end
from orchestrator.optimizer.recommendation import EarlyStop


def finite_values(curve: Sequence[float | None]) -> list[float]:
    """The finite values of ``curve`` as floats (a report may hold None or NaN)."""
    return [float(v) for v in curve if v is not None and math.isfinite(float(v))]


@dataclass(frozen=True)
class ReportQuery:
    """What the store checks at one report (values signed: lower is better).

    ``kind="quantile"``: add ``entry`` (default ``value``) to the runs that reached ``step``; stop
    when ``value`` is worse than the ``quantile`` of the completed entries at ``key`` (at least
    ``min_count`` of them) or, before there are that many, of the runs that reached ``step`` (at
    least ``min_peers``). With an ``end``, it is judged instead, against the same quantile of the
    ends of the runs that reached ``step`` (at least ``min_peers``).
    ``kind="rung"``: add ``value`` to the rung ``key``; once it holds ``min_count`` runs, stop
    unless fewer than ``max(1, n // eta)`` of them are strictly better. Neither stops a run at or
    past the longest completed curve's last step.
    """

    kind: Literal["quantile", "rung"]
    key: str
    value: float
    min_count: int
    quantile: float = 0.5
    eta: int = 3
    step: int = 0
    entry: float | None = None
    min_peers: int = 3
    #: the curve's optimistic end; None: no end is compared (no model, or a noisy curve);
    #: -inf: the model has too few values yet, so the run cannot be stopped
    end: float | None = None


class EarlyStoppingRule(ABC):
    """Decides from intermediate values whether a running experiment should stop now."""

    #: the ``optimizer.early_stopping.rule`` value, recorded as the reason on a stopped run's row
    name: ClassVar[str]

    @abstractmethod
    def at_report(self, curve: Sequence[float], *, sign: float = 1.0) -> ReportQuery | None:
        """What to ask the store after the run reported ``curve``; None: it cannot stop now."""

    def completed_entries(self, curve: Sequence[float], *, sign: float = 1.0) -> dict[str, float]:
        """What a completed run's curve adds to the store: key -> signed value."""
        return {}

    def should_stop(
        self, curve: Sequence[float], completed: Sequence[Sequence[float]], *, sign: float = 1.0
    ) -> bool:
        """True to stop the run (the same rule over plain lists).

        Args:
            curve: the running experiment's intermediate values so far, one per step.
            completed: intermediate values of the sweep's completed experiments.
            sign: 1 when lower values are better, -1 when higher are.
        """
        query = self.at_report(curve, sign=sign)
        finished = [finite_values(c) for c in completed]
        if query is None or query.step >= max(map(len, finished), default=0):
            return False  # never at or past the end of the longest completed curve
        return self._stops(query, finished, sign)

    @abstractmethod
    def _stops(self, query: ReportQuery, completed: list[list[float]], sign: float) -> bool:
        """The rule's verdict on ``query`` against the ``completed`` curves (finite values)."""


def step_key(t: int) -> str:
    return f"step:{t}"


@dataclass(frozen=True)
class PercentileRule(EarlyStoppingRule):
    """Stop a run whose best value so far is worse than a percentile of its peers' values at its
    step (their best values so far, or with ``compare="running_average"`` their running averages).

    Args:
        percentile: 50 is the median; lower is stricter (a run must be in the best ``percentile`` %).
        grace_steps: values the run reports before it may be stopped.
        min_completed: completed curves reaching the step before they alone are the peers.
        min_peers: runs that reached the step before a run is judged there, until then.
        compare: ``best`` or ``running_average``: what of a peer's curve is compared.
        curve_model: judge a curve's optimistic end where the model sees its shape (see the
            module docstring).
    """

    name: ClassVar[str] = "percentile"

    percentile: float = 50.0
    grace_steps: int = 3
    min_completed: int = 5
    min_peers: int = 3
    compare: str = "best"
    curve_model: bool = True

    def at_report(self, curve: Sequence[float], *, sign: float = 1.0) -> ReportQuery | None:
        values = [sign * v for v in finite_values(curve)]
        t = len(values)
        if t == 0 or t < self.grace_steps:
            return None
        return ReportQuery(
            "quantile",
            step_key(t),
            min(values),
            self.min_completed,
            self.percentile / 100,
            step=t,
            entry=self._entries(values)[-1],
            min_peers=self.min_peers,
            end=self._end(values),
        )

    def _entries(self, signed: Sequence[float]) -> list[float]:
        """What a curve shows its peers at each step: its best so far, or its running average."""
        if self.compare == "running_average":
            return (np.cumsum(signed) / np.arange(1, len(signed) + 1)).tolist()
        return np.minimum.accumulate(np.asarray(signed, dtype=float)).tolist()

    def _end(self, signed: Sequence[float]) -> float | None:
        """The curve's optimistic end (see ``ReportQuery.end``), never above its best so far."""
        if not self.curve_model:
            return None
        if len(signed) < MIN_POINTS:
            return -math.inf
        predicted = predict_end(signed)
        return None if predicted is None else min(predicted.optimistic, min(signed))

    def completed_entries(self, curve: Sequence[float], *, sign: float = 1.0) -> dict[str, float]:
        values = [sign * v for v in finite_values(curve)]
        return {step_key(t): v for t, v in enumerate(self._entries(values), start=1)}

    def _stops(self, query: ReportQuery, completed: list[list[float]], sign: float) -> bool:
        peers = [c for c in completed if len(c) >= query.step]
        if len(peers) < query.min_count or (query.end is not None and not math.isfinite(query.end)):
            return False
        if query.end is None:
            entries = [self.completed_entries(c, sign=sign)[query.key] for c in peers]
            return query.value > float(np.quantile(entries, query.quantile))
        ends = [self._end([sign * v for v in c][: query.step]) for c in peers]
        known = [e for e in ends if e is not None and math.isfinite(e)]
        return len(known) >= self.min_peers and query.end > float(np.quantile(known, query.quantile))


@dataclass(frozen=True)
class MedianRule(PercentileRule):
    """The percentile rule at the median: stop a run worse than half the completed ones at its step."""

    name: ClassVar[str] = "median"

    def __init__(
        self,
        grace_steps: int = 3,
        min_completed: int = 5,
        min_peers: int = 3,
        compare: str = "best",
        curve_model: bool = True,
    ) -> None:
        super().__init__(50.0, grace_steps, min_completed, min_peers, compare, curve_model)


@dataclass(frozen=True)
class AshaRule(EarlyStoppingRule):
    """Asynchronous successive halving over reported steps.

    Args:
        min_resource: the first rung's step; rung ``k`` is at ``min_resource * eta**k``.
        eta: the reduction factor: the best ``1/eta`` of a rung go on.
        min_peers: runs a rung needs before it stops anyone.
    """

    name: ClassVar[str] = "asha"

    min_resource: int = 1
    eta: int = 3
    min_peers: int = 5

    def rung_of(self, step: int) -> int | None:
        """The rung at ``step`` (a count of reported values), or None between rungs."""
        rung, at = 0, self.min_resource
        while at < step:
            rung, at = rung + 1, at * self.eta
        return rung if at == step else None

    def at_report(self, curve: Sequence[float], *, sign: float = 1.0) -> ReportQuery | None:
        values = finite_values(curve)
        rung = self.rung_of(len(values)) if values else None
        if rung is None:
            return None
        return ReportQuery(
            "rung", f"rung:{rung}", sign * values[-1], self.min_peers, eta=self.eta, step=len(values)
        )

    def _stops(self, query: ReportQuery, completed: list[list[float]], sign: float) -> bool:
        t = query.step
        peers = [sign * c[t - 1] for c in completed if len(c) >= t]
        if len(peers) + 1 < query.min_count:
            return False
        better = sum(p < query.value for p in peers)
        return better >= max(1, (len(peers) + 1) // query.eta)


def stopping_rule(options: EarlyStoppingConfig) -> EarlyStoppingRule | None:
    """The sweep's rule for runs that report intermediate values; None when none applies."""
    if not options.enabled or not options.median_rule:
        return None
    if options.rule == "asha":
        return AshaRule(max(1, options.grace_steps), options.reduction_factor, options.min_completed)
    shared = (options.min_peers, options.compare, options.curve_model)
    if options.rule == "percentile":
        return PercentileRule(options.percentile, options.grace_steps, options.min_completed, *shared)
    return MedianRule(options.grace_steps, options.min_completed, *shared)


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


def shot_noise_variance(metrics: Mapping[str, Any], extra: Mapping[str, Any], metric: str) -> float | None:
    """The known noise variance of a low-shot ``metric``: reported (``<metric>_variance`` or
    ``extra["variance"]``), or binomial for a share in 0..1 estimated from ``extra["shots"]``."""
    value = metrics.get(f"{metric}_variance", (extra.get("variance") or {}).get(metric))
    if isinstance(value, (int, float)) and math.isfinite(value):
        return max(float(value), 0.0)
    p, shots = metrics.get(metric), extra.get("shots")
    if isinstance(p, (int, float)) and isinstance(shots, int) and shots > 0 and 0.0 <= p <= 1.0:
        return max(p * (1.0 - p), 0.25 / shots) / shots
    return None
