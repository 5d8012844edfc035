"""The adaptive optimizer: from results and pending points to a recommendation.

One refit (``analyze_results``) is a pure function of its inputs plus a warm start for the kernel
hyperparameters, and is seeded from the sweep's seed and the number of results: two beats that
refit the same state by mistake compute the same scores.

Phases: until the startup design (``startup_points``, default max(6, varying parameters))
is done or in flight, pending points are ordered by a space-filling design (a Latin hypercube
mapped to the nearest points; see ``_gp/design.py`` for why not Sobol). After that, the head of the
order (``batch_size`` positions, at least the publish window) is planned batch-aware: experiments
in flight are fantasized, and each pick is fantasized before the next. A ``coverage_share`` of all
runs stays space-filling: the startup design counts towards it, and once runs outnumber
``startup_points / coverage_share`` a head position is reserved for a maximin pick whenever the
running count says so. The count assumes the coordinator runs the head in order, which it does.

Scaling (refit plus re-score of every pending point; ``benchmarks/optimizer.py`` measures it):

* training data: above ``max_training_points`` (1,000) results, the best 30% and a maximin
  (space-filling) subset of the rest; the kernel hyperparameters are fitted on at most
  ``fit_points`` (150) of those, then the GP conditions on all of them with one Cholesky;
* candidates: above ``candidate_shortlist`` (1,500) pending points, every point gets the
  posterior mean (float32, blocked matrix products) and an upper bound on its variance from its
  nearest training point (one k-d tree query); only the best by that bound's acquisition, plus
  the best by mean, get the exact variance and enter the batch plan; the rest keep the order
  of the screen;
* batch picks update the shortlist's moments by rank-one updates instead of re-predicting, and
  fantasies extend the Cholesky factor (and the cached inverse) instead of refactorizing;
* small dense algebra (the hyperparameter fit, local searches) runs with one BLAS thread.

Measured on the 2-core machine (cold, no warm start): about 0.4 s for 500 results x 10,000
pending points and 1.4-2.5 s for 5,000 x 100,000.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from orchestrator.optimizer._gp.design import startup_order
from orchestrator.optimizer._gp.encoding import SpaceEncoder
from orchestrator.optimizer._gp.model import KernelParams
from orchestrator.optimizer._gp.observations import (
    Observations,
    Row,
    Scalarizer,
    SlackFunction,
    build_observations,
    encode_rows,
    noise_variance,
)
from orchestrator.optimizer._gp.planner import PlanSettings, plan_order
from orchestrator.optimizer._gp.refine import Region, promising_regions
from orchestrator.optimizer._gp.state import FitSettings, ModelState, fit_state
from orchestrator.optimizer._inputs import point_columns, to_rows
from orchestrator.optimizer.early_stopping import median_rule_stops, optimistic_bound, stop_allowance
from orchestrator.optimizer.recommendation import OptimizationRecommendation, ParameterRegion, plain
from orchestrator.space import ParameterSpace

if TYPE_CHECKING:  # orchestrator.config imports this package for OptimizerConfig
    from orchestrator.config import SweepConfiguration

_RUN_STATUSES = {"completed", "failed", "early_stopped"}


def _scores(length: int) -> np.ndarray:
    """Scores for positions 0..length-1 of an order: (0, 1], higher first."""
    return (length - np.arange(length)) / max(length, 1)


class AdaptiveOptimizer:
    """Gaussian-process optimizer that re-orders a sweep's pending points.

    Args:
        config: the sweep (objectives, metric constraints, ``optimizer`` options, seed).
        space: its parameter space; built from ``config`` when omitted.
    """

    def __init__(self, config: SweepConfiguration, space: ParameterSpace | None = None) -> None:
        self.config = config
        self.options = config.optimizer
        self.space = space if space is not None else config.space()
        self.encoder = SpaceEncoder(self.space.info)
        self._objectives = [
            (o.metric, -1.0 if o.goal == "maximize" else 1.0, o.weight) for o in config.objectives
        ]
        self._weights = np.asarray([o.weight for o in config.objectives], dtype=float)
        self._constraints = [SlackFunction(t) for t in config.constraints.metrics]
        self._warm: dict[str, KernelParams] = {}
        self._state: ModelState | None = None
        self._curves: list[list[float]] = []
        self._sweep_size = 0
        self._already_stopped = 0
        self._stopped_ids: set[str] = set()
        self.startup_points = self.options.startup_for(self.encoder.n_params)

    # -- encoding ------------------------------------------------------------------------------

    def _encode(self, indices: np.ndarray, added: Mapping[int, Mapping[str, Any]] | None) -> np.ndarray:
        if len(indices) == 0:
            return np.zeros((0, self.encoder.width))
        return self.encoder.encode(point_columns(self.space, indices, added))

    def _valid(self, encoded: np.ndarray) -> np.ndarray:
        """Parameter constraints of the sweep, checked on decoded points."""
        mask = np.ones(len(encoded), dtype=bool)
        if self.space.constraints and len(encoded):
            columns = self.encoder.decode(encoded)
            for expr in self.space.constraints:
                mask &= np.asarray(expr.evaluate(columns), dtype=bool)
        return mask

    def _decode_point(self, encoded: np.ndarray) -> dict[str, Any]:
        columns = self.encoder.decode(encoded[None])
        return {name: plain(values[0]) for name, values in columns.items()}

    # -- startup design ------------------------------------------------------------------------

    def initial_order(
        self,
        indices: np.ndarray,
        n_startup: int | None = None,
        *,
        existing: np.ndarray | None = None,
        added: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> np.ndarray:
        """Space-filling scores for ``indices`` (aligned with it; higher runs sooner).

        The first ``n_startup`` picks follow a scrambled Sobol design mapped to the nearest
        points; the rest are ordered farthest-first from those and from ``existing`` (indices
        already run or in flight).
        """
        indices = np.asarray(indices, dtype=np.int64)
        U = self._encode(indices, added)
        run = self._encode(np.asarray(existing if existing is not None else [], dtype=np.int64), added)
        return self._startup_scores(
            U, run[np.all(np.isfinite(run), axis=1)], self.startup_points if n_startup is None else n_startup
        )

    def _startup_scores(self, U: np.ndarray, existing: np.ndarray, n_startup: int) -> np.ndarray:
        ok = np.flatnonzero(np.all(np.isfinite(U), axis=1))
        scores = np.zeros(len(U))
        if self.encoder.width == 0:
            return _scores(len(U))  # no parameter varies: every point is the same, keep their order
        order = startup_order(self.encoder, U[ok], existing, n_startup, seed=self.config.seed)
        scores[ok[order]] = _scores(len(U))[: len(order)]
        return scores

    def _model_ready(self, usable: int, in_flight: int) -> bool:
        """The startup design is covered once its runs are done or in flight.

        Waiting for all of them to finish would leave the first few workers' next picks to the
        space-filling order too (11 space-filling runs instead of 8 with 4 workers). A model
        needs a few results, though: half the design, and at least 3.
        """
        startup = self.startup_points
        return usable >= max(3, (startup + 1) // 2) and usable + in_flight >= startup

    # -- coverage ------------------------------------------------------------------------------

    def _reserved(self, runs: int) -> int:
        return max(0, math.floor(self.options.coverage_share * runs + 1e-9) - self.startup_points)

    def _head_kinds(self, runs: int) -> list[str]:
        return [
            "coverage" if self._reserved(runs + j + 1) > self._reserved(runs + j) else "model"
            for j in range(self.options.batch_size)
        ]

    def _coverage(self, runs: int) -> dict[str, Any]:
        filling = min(runs, self.startup_points) + self._reserved(runs)
        return {
            "target_share": self.options.coverage_share,
            "startup_points": self.startup_points,
            "runs": runs,
            "space_filling_runs": filling,
            "share": filling / runs if runs else 0.0,
        }

    # -- the refit -----------------------------------------------------------------------------

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
        """Refit on ``results`` and score the ``pending`` points.

        Args:
            results: the sweep's results so far (``ExperimentResult`` list, dicts or a DataFrame).
            pending: point indices waiting to run (duplicates are fine).
            in_flight: point indices queued or running; they are fantasized, never re-picked.
            added: parameters of added points (indices from ``space.size`` on).
            partials: intermediate values of running experiments, by experiment id (median rule).
            previous: the last recommendation, to say what changed.
            sweep_size: experiments in the sweep, for ``max_stopped_share``; default: results +
                pending + in flight (an overcount when a low-shot run waits for its full run).

        Returns:
            The recommendation; its scores cover every pending index.
        """
        # One BLAS thread: a refit shares its machine with the coordinator or a worker, and on
        # two cores BLAS threads made the 500 x 10,000 refit 1.5x slower (benchmarks/optimizer.py).
        with threadpool_limits(1):
            return self._analyze(results, pending, in_flight, added, partials, previous, sweep_size)

    def _analyze(
        self,
        results: Any,
        pending: np.ndarray,
        in_flight: np.ndarray | None,
        added: Mapping[int, Mapping[str, Any]] | None,
        partials: Mapping[str, Sequence[float]] | None,
        previous: OptimizationRecommendation | None,
        sweep_size: int | None,
    ) -> OptimizationRecommendation:
        rows = to_rows(results, self.space.names)
        pending = np.unique(np.asarray(pending, dtype=np.int64))
        in_flight = np.asarray(in_flight if in_flight is not None else [], dtype=np.int64)
        U = self._encode(pending, added)
        flight = self._encode(in_flight, added)
        flight = flight[np.all(np.isfinite(flight), axis=1)]
        run_rows = [r for r in rows if r.status in _RUN_STATUSES]
        run = encode_rows(self.encoder, run_rows)
        run = run[np.all(np.isfinite(run), axis=1)]
        runs = len(run_rows) + len(in_flight)
        obs = build_observations(rows, self.encoder, self._objectives, self._constraints)
        rng = np.random.default_rng([self.config.seed, len(rows)])
        scalarizer = Scalarizer.fit(obs.values[obs.usable], self._weights, self.options.multi_objective, rng)
        state = None
        if (
            self._objectives
            and self.encoder.width
            and self._model_ready(int(obs.usable.sum()), len(in_flight))
        ):
            state = fit_state(
                obs,
                scalarizer,
                FitSettings(
                    self.options.max_training_points, self.options.fit_points, self.options.output_warping
                ),
                self._warm,
            )
        self._state = state
        self._curves = [list(r.extra.get("intermediate") or []) for r in rows if r.status == "completed"]
        self._sweep_size = sweep_size if sweep_size is not None else len(rows) + len(pending) + len(in_flight)
        self._already_stopped = sum(r.status == "early_stopped" for r in rows)

        rec = OptimizationRecommendation(priority_adjustments={}, coverage=self._coverage(runs))
        if state is None:
            scores = self._startup_scores(U, np.vstack([run, flight]), self.startup_points)
            rec.priority_adjustments = dict(zip(pending.tolist(), scores.tolist(), strict=True))
            rec.phase = "startup" if self._objectives else "space_filling"
        else:
            self._plan(rec, state, obs, pending, U, flight, run, runs)
        self._early_stops(rec, rows, obs, pending, in_flight, partials)
        rec.summary = self._summary(rec, rows, obs, previous)
        return rec

    def _plan(
        self,
        rec: OptimizationRecommendation,
        state: ModelState,
        obs: Observations,
        pending: np.ndarray,
        U: np.ndarray,
        flight: np.ndarray,
        run: np.ndarray,
        runs: int,
    ) -> None:
        o = self.options
        regions = promising_regions(
            state.post,
            state.post.X,
            state.post.train_mean(),
            state.feasible,
            self.encoder,
            count=o.region_count,
            width=o.region_width,
        )
        ok = np.flatnonzero(np.all(np.isfinite(U), axis=1) & self._valid(U))
        # Whole-box searches of the acquisition find what the fixed candidates miss while results
        # are few; with more results than the kernel is fitted on, each costs O(n) per step and
        # the candidates plus the local boxes around the regions cover the space.
        settings = PlanSettings(
            o.batch_size,
            o.batch_strategy,
            o.liar,
            o.candidate_shortlist,
            o.refinement_points if o.refinement else 0,
            o.region_width,
            o.explore_regions,
            global_starts=4 if len(obs.rows) <= o.fit_points else 0,
            seed=self.config.seed + runs,
        )
        plan = plan_order(
            state.post,
            state.acquisition(o.acquisition, o.ucb_beta),
            U[ok],
            flight,
            run,
            self._head_kinds(runs),
            settings,
            self.encoder,
            regions,
            self._valid,
        )
        total = len(pending) + sum(p.kind == "refinement" for p in plan.picks)
        scores = _scores(total)
        position = 0
        priorities: dict[int, float] = {}
        for pick in plan.picks:
            if pick.kind == "refinement":
                rec.refinement_points.append(self._decode_point(pick.point))
                rec.refinement_scores.append(float(scores[position]))
            else:
                priorities[int(pending[ok[pick.candidate]])] = float(scores[position])
            position += 1
        for pos in plan.order:
            index = int(pending[ok[pos]])
            if index not in priorities:
                priorities[index] = float(scores[position])
                position += 1
        for index in pending[np.setdiff1d(np.arange(len(pending)), ok)]:
            priorities[int(index)] = float(scores[position]) if position < total else 0.0
            position += 1
        rec.priority_adjustments = priorities
        rec.phase = "model"
        rec.confidence_level = state.confidence
        rec.promising_regions = [self._region(r, state) for r in plan.regions]
        rec.incumbent = self._incumbent(state, obs)
        kinds = [p.kind for p in plan.picks]
        rec.resource_reallocation["head"] = {k: kinds.count(k) for k in ("model", "coverage", "refinement")}
        rec.resource_reallocation["batch_strategy"] = o.batch_strategy

    def _objective_units(self, state: ModelState, value: float) -> float:
        target = float(state.from_standard(np.asarray(value)))
        if state.scalarizer.mode == "single":
            return target * self._objectives[0][1]
        return target

    def _region(self, region: Region, state: ModelState) -> ParameterRegion:
        center = self._decode_point(region.center)
        fixed = {name: center[name] for name, _, _ in self.encoder.categorical_blocks()}
        predicted = self._objective_units(state, region.mean) if np.isfinite(region.mean) else None
        return ParameterRegion(
            self.encoder.parameter_bounds(region.lower, region.upper),
            fixed,
            center,
            predicted,
            region.rank,
            region.kind,
        )

    def _incumbent(self, state: ModelState, obs: Observations) -> dict[str, Any] | None:
        if state.incumbent is None or state.best is None:
            return None
        row = obs.rows[state.incumbent]
        return plain(
            {
                "experiment_id": row.experiment_id,
                "index": row.index,
                "parameters": dict(row.parameters),
                "metrics": {m: row.metrics.get(m) for m, _, _ in self._objectives},
                "value": self._objective_units(state, state.best),
            }
        )

    # -- early stopping ------------------------------------------------------------------------

    def _promotion_margin(self, row: Row) -> float | None:
        """Optimistic bound minus incumbent (standardized); > 0 means do not promote."""
        state = self._state
        if state is None or state.best is None or not self._objectives:
            return None
        x = encode_rows(self.encoder, [row])
        if not np.all(np.isfinite(x)) or any(m not in row.metrics for m, _, _ in self._objectives):
            return None
        signed = np.asarray([[sign * float(row.metrics[m]) for m, sign, _ in self._objectives]])
        observed = float(state.to_standard(state.scalarizer(signed))[0])
        known = np.asarray([[noise_variance(row, m) for m, _, _ in self._objectives]])
        if np.all(np.isfinite(known)):
            slope = float(state.transform.slope(state.scalarizer(signed))[0])
            noise = float(state.scalarizer.variance(known)[0]) * slope**2
        else:
            noise = max(state.post.params.noise, 0.01) / max(row.fidelity, 1e-3)
        mean, var = state.post.predict(x)
        bound = optimistic_bound(
            float(mean[0]),
            float(var[0]),
            observed,
            noise,  # type: ignore[index]
            beta=self.options.early_stopping.promotion_beta,
        )
        return bound - state.best

    def _early_stops(
        self,
        rec: OptimizationRecommendation,
        rows: list[Row],
        obs: Observations,
        pending: np.ndarray,
        in_flight: np.ndarray,
        partials: Mapping[str, Sequence[float]] | None,
    ) -> None:
        es = self.options.early_stopping
        if es.low_fidelity_share is not None:
            rec.resource_reallocation["low_fidelity_share"] = es.low_fidelity_share
        if not es.enabled:
            return
        sign = self._objectives[0][1] if self._objectives else 1.0
        stops: list[tuple[float, str, str]] = []  # (margin, id, reason)
        if es.median_rule and partials:
            for eid, curve in partials.items():
                if median_rule_stops(
                    curve, self._curves, sign=sign, grace_steps=es.grace_steps, min_completed=es.min_completed
                ):
                    stops.append((0.0, str(eid), "median"))
        promote: list[str] = []
        if es.low_fidelity_share is not None:
            full = {tuple(np.round(x, 9)) for x, r in zip(obs.X, obs.rows, strict=True) if r.fidelity >= 1.0}
            for x, row in zip(obs.X, obs.rows, strict=True):
                if row.status != "completed" or row.fidelity >= 1.0 or tuple(np.round(x, 9)) in full:
                    continue
                margin = self._promotion_margin(row)
                if margin is not None and margin > 0:
                    stops.append((margin, row.experiment_id, "not promoted"))
                else:
                    promote.append(row.experiment_id)
        allowance = stop_allowance(es.max_stopped_share, self._sweep_size, self._already_stopped)
        stops.sort(key=lambda s: -s[0])
        for _, eid, reason in stops[allowance:]:
            if reason == "not promoted":
                promote.append(eid)  # over the share: it must run at full shots after all
        rec.early_stop_candidates = [eid for _, eid, _ in stops[:allowance]]
        rec.resource_reallocation["promote_to_full_shots"] = promote
        rec.resource_reallocation["stop_reasons"] = {eid: reason for _, eid, reason in stops[:allowance]}

    def should_early_stop(
        self,
        experiment_params: Mapping[str, Any],
        partial_results: Sequence[float] | Mapping[str, Any],
        *,
        experiment_id: str | None = None,
        history: Sequence[Sequence[float]] | None = None,
        sweep_size: int | None = None,
        stopped: int | None = None,
    ) -> bool:
        """Decide whether to stop one experiment now.

        Args:
            experiment_params: its parameters.
            partial_results: a list of intermediate values (median rule), or the metrics of its
                low-shot run (shots as fidelity; may carry ``shot_fraction`` (share of the full
                shots, default ``low_fidelity_share``), ``shots`` and ``<metric>_variance``).
            experiment_id: recorded so that the stopped share counts it once.
            history: completed curves for the median rule; default: those of the last refit.
            sweep_size: experiments in the sweep; default: as counted at the last refit.
            stopped: experiments stopped so far; default: counted from the last refit on.

        Returns:
            True to stop. Always False when early stopping is off, before the model exists
            (shots rule), or when the stopped share is reached.
        """
        es = self.options.early_stopping
        if not es.enabled:
            return False
        if experiment_id is not None and experiment_id in self._stopped_ids:
            return True
        count = stopped if stopped is not None else self._already_stopped + len(self._stopped_ids)
        if stop_allowance(es.max_stopped_share, sweep_size or self._sweep_size, count) <= 0:
            return False
        if isinstance(partial_results, Mapping):
            metrics = {
                k: float(v)
                for k, v in partial_results.items()
                if isinstance(v, (int, float)) and k not in ("shot_fraction", "shots")
            }
            share = partial_results.get("shot_fraction", es.low_fidelity_share or 1.0)
            row = Row(
                experiment_id or "",
                -1,
                "completed",
                dict(experiment_params),
                metrics,
                {"shot_fraction": share, "shots": partial_results.get("shots")},
            )
            margin = self._promotion_margin(row)
            decision = margin is not None and margin > 0
        else:
            if not es.median_rule:
                return False
            sign = self._objectives[0][1] if self._objectives else 1.0
            decision = median_rule_stops(
                partial_results,
                history if history is not None else self._curves,
                sign=sign,
                grace_steps=es.grace_steps,
                min_completed=es.min_completed,
            )
        if decision and experiment_id is not None:
            self._stopped_ids.add(experiment_id)
        return decision

    # -- reporting -----------------------------------------------------------------------------

    def _summary(
        self,
        rec: OptimizationRecommendation,
        rows: list[Row],
        obs: Observations,
        previous: OptimizationRecommendation | None,
    ) -> str:
        parts = [f"{len(rows)} results, {int(obs.usable.sum())} usable by the model"]
        if rec.phase != "model":
            parts.append(f"{rec.phase} order ({self.startup_points} startup points)")
        else:
            head = rec.resource_reallocation.get("head", {})
            parts.append(
                f"head: {head.get('model', 0)} model, {head.get('coverage', 0)} coverage, "
                f"{head.get('refinement', 0)} refinement picks"
            )
            if rec.incumbent is not None:
                parts.append(f"incumbent {rec.incumbent['value']:.6g} ({rec.incumbent['experiment_id']})")
            parts.append(f"confidence {rec.confidence_level:.2f}")
        if previous is not None:
            k = self.options.batch_size
            new = set(rec.top(k)) - set(previous.top(k))
            parts.append(f"{len(new)} of the top {k} are new since the last refit")
            if (
                previous.incumbent
                and rec.incumbent
                and previous.incumbent.get("value") != rec.incumbent["value"]
            ):
                parts.append(f"incumbent moved from {previous.incumbent['value']:.6g}")
        if rec.early_stop_candidates:
            parts.append(f"{len(rec.early_stop_candidates)} to stop early")
        cov = rec.coverage
        parts.append(
            f"coverage {cov['space_filling_runs']}/{cov['runs']} space-filling runs "
            f"(target {cov['target_share']:.0%})"
        )
        return "; ".join(parts) + "."
