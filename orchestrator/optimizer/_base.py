"""The optimizer role: what every sampler of pending experiments provides.

Modelled on Optuna's ``BaseSampler``. An optimizer is built from a sweep and its space and holds
nothing else: every refit (``analyze_results``) is a function of its arguments, and so is every
early-stopping decision (``should_early_stop``). What a refit wants to carry to the next one (the
GP's kernel hyperparameters) travels in the recommendation, which the caller passes back as
``previous``. Writing the recommendation to a live sweep (the seed's ``update_priorities``) is
``orchestrator.optimizer.service``'s job, not the optimizer's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from core.space import ParameterSpace
from orchestrator.optimizer._gp.observations import Row
from orchestrator.optimizer._inputs import to_rows
from orchestrator.optimizer.early_stopping import (
    StopCandidate,
    finite_values,
    select_stops,
    stop_allowance,
    stopping_rule,
)
from orchestrator.optimizer.recommendation import EarlyStop, OptimizationRecommendation

if TYPE_CHECKING:  # core.config imports this package for OptimizerConfig
    from core.config import SweepConfiguration

#: statuses of results that took a run (they count towards coverage and the space already seen)
RUN_STATUSES = frozenset({"completed", "failed", "early_stopped"})


def rank_scores(length: int) -> np.ndarray:
    """Scores for positions 0..length-1 of an order: (0, 1], higher first."""
    return (length - np.arange(length)) / max(length, 1)


@dataclass(frozen=True)
class RefitInputs:
    """One refit's inputs, normalized (see ``BaseOptimizer.analyze_results`` for each)."""

    rows: tuple[Row, ...]
    pending: np.ndarray  # unique point indices, sorted
    in_flight: np.ndarray
    added: Mapping[int, Mapping[str, Any]]
    partials: Mapping[str, Sequence[float]]
    previous: OptimizationRecommendation | None
    sweep_size: int

    @property
    def run_rows(self) -> list[Row]:
        """Results that took a run."""
        return [r for r in self.rows if r.status in RUN_STATUSES]

    @property
    def runs(self) -> int:
        """Runs done or in flight."""
        return len(self.run_rows) + len(self.in_flight)

    @property
    def stopped(self) -> int:
        """Experiments stopped early so far."""
        return sum(r.status == "early_stopped" for r in self.rows)


def completed_curves(rows: Sequence[Row]) -> list[list[float]]:
    """Intermediate values of the completed results (``extra["intermediate"]``)."""
    return [finite_values(r.extra.get("intermediate") or []) for r in rows if r.status == "completed"]


class BaseOptimizer(ABC):
    """Orders a sweep's pending experiments and says which to stop early.

    Args:
        config: the sweep (objectives, ``optimizer`` options, seed).
        space: its parameter space; built from ``config`` when omitted.
    """

    #: the ``optimizer.sampler`` value that selects this implementation
    name: ClassVar[str]

    def __init__(self, config: SweepConfiguration, space: ParameterSpace | None = None) -> None:
        self.config = config
        self.options = config.optimizer
        self.space = space if space is not None else config.space()
        self.rule = stopping_rule(self.options.early_stopping)
        first = config.objectives[0] if config.objectives else None
        #: 1 when lower values of the first objective are better, -1 when higher are
        self.sign = -1.0 if first is not None and first.goal == "maximize" else 1.0

    def analyze_results(
        self,
        results: Any,
        pending: np.ndarray,
        in_flight: np.ndarray | None = None,
        *,
        added: Mapping[int, Mapping[str, Any]] | None = None,
        partials: Mapping[str, Sequence[float]] | None = None,
        previous: OptimizationRecommendation | None = None,
        sweep_size: int | None = None,
    ) -> OptimizationRecommendation:
        """Score the ``pending`` points given the sweep's ``results`` so far.

        Args:
            results: the sweep's results so far (``ExperimentResult`` list, dicts or a DataFrame).
            pending: point indices waiting to run (duplicates are fine).
            in_flight: point indices queued or running; never re-picked.
            added: parameters of added points (indices from ``space.size`` on).
            partials: intermediate values of running experiments, by experiment id.
            previous: the last recommendation: what changed is reported against it, and what it
                carries for the next refit (the GP's kernel fit) is used.
            sweep_size: experiments in the sweep, for ``max_stopped_share``; default: results +
                pending + in flight (an overcount when a low-shot run waits for its full run).

        Returns:
            The recommendation; its scores cover every pending index.
        """
        rows = tuple(to_rows(results, self.space.names))
        pending = np.unique(np.asarray(pending, dtype=np.int64))
        flight = np.asarray(in_flight if in_flight is not None else [], dtype=np.int64)
        size = sweep_size if sweep_size is not None else len(rows) + len(pending) + len(flight)
        inputs = RefitInputs(rows, pending, flight, dict(added or {}), dict(partials or {}), previous, size)
        return self._analyze(inputs)

    @abstractmethod
    def _analyze(self, inputs: RefitInputs) -> OptimizationRecommendation:
        """The refit proper; must not change ``self``."""

    def should_early_stop(
        self,
        experiment_params: Mapping[str, Any],
        partial_results: Sequence[float] | Mapping[str, Any],
        *,
        results: Any,
        sweep_size: int,
        stopped: int | None = None,
    ) -> bool:
        """Decide whether to stop one experiment now, from the arguments alone.

        Args:
            experiment_params: its parameters.
            partial_results: a list of intermediate values (judged by the sweep's rule against
                the completed curves in ``results``), or the metrics of its low-shot run (shots
                as fidelity; may carry ``shot_fraction`` (share of the full shots, default
                ``low_fidelity_share``), ``shots`` and ``<metric>_variance``).
            results: the sweep's results so far, as for ``analyze_results``.
            sweep_size: experiments in the sweep, for ``max_stopped_share``.
            stopped: experiments stopped so far; default: the early-stopped rows of ``results``.

        Returns:
            True to stop. Always False when early stopping is off or the stopped share is reached.
        """
        es = self.options.early_stopping
        if not es.enabled:
            return False
        rows = to_rows(results, self.space.names)
        count = stopped if stopped is not None else sum(r.status == "early_stopped" for r in rows)
        if stop_allowance(es.max_stopped_share, sweep_size, count) <= 0:
            return False
        if isinstance(partial_results, Mapping):
            return self._stops_low_shot_run(experiment_params, partial_results, rows)
        return self.rule is not None and self.rule.should_stop(
            partial_results, completed_curves(rows), sign=self.sign
        )

    def _stops_low_shot_run(
        self, experiment_params: Mapping[str, Any], metrics: Mapping[str, Any], rows: Sequence[Row]
    ) -> bool:
        """Whether a low-shot run stops; without a model, every one is promoted."""
        return False

    def _early_stops(
        self, inputs: RefitInputs, low_shot: Sequence[StopCandidate] = ()
    ) -> tuple[tuple[EarlyStop, ...], tuple[str, ...]]:
        """The rule's verdicts on the running experiments plus ``low_shot``, under the share cap.

        Returns ``(stops, spared low-shot runs)``.
        """
        es = self.options.early_stopping
        if not es.enabled:
            return (), ()
        candidates: list[StopCandidate] = []
        if self.rule is not None and inputs.partials:
            curves = completed_curves(inputs.rows)
            candidates = [
                StopCandidate(str(eid), self.rule.name)
                for eid, curve in inputs.partials.items()
                if self.rule.should_stop(curve, curves, sign=self.sign)
            ]
        allowance = stop_allowance(es.max_stopped_share, inputs.sweep_size, inputs.stopped)
        return select_stops([*candidates, *low_shot], allowance)
