"""The Gaussian-process optimizer (``optimizer.sampler: gp``): a thin layer over ``_gp``.

One refit (``analyze_results``) is a pure function of its inputs: it is seeded from the sweep's
seed and the number of results, and the kernel fit starts from the hyperparameters that the
previous recommendation carries. Two beats that refit the same state by mistake compute the
same scores.

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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from core.space import ParameterSpace
from orchestrator.optimizer._base import BaseOptimizer, RefitInputs, rank_scores
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
from orchestrator.optimizer._gp.planner import Plan, PlanSettings, plan_order
from orchestrator.optimizer._gp.refine import Region, promising_regions
from orchestrator.optimizer._gp.state import FitSettings, ModelState, fit_state
from orchestrator.optimizer._inputs import point_columns
from orchestrator.optimizer.early_stopping import StopCandidate, optimistic_bound
from orchestrator.optimizer.recommendation import (
    Coverage,
    HeadPlan,
    Incumbent,
    KernelFit,
    OptimizationRecommendation,
    ParameterRegion,
    plain,
)

if TYPE_CHECKING:  # core.config imports this package for OptimizerConfig
    from core.config import SweepConfiguration


@dataclass(frozen=True)
class _Model:
    """One refit's fitted model and the kernel hyperparameters it ends with."""

    state: ModelState | None
    obs: Observations
    kernels: Mapping[str, KernelFit]


def _finite(encoded: np.ndarray) -> np.ndarray:
    return encoded[np.all(np.isfinite(encoded), axis=1)]


class GPOptimizer(BaseOptimizer):
    """Gaussian-process optimizer that re-orders a sweep's pending points.

    Args:
        config: the sweep (objectives, metric constraints, ``optimizer`` options, seed).
        space: its parameter space; built from ``config`` when omitted.
    """

    name = "gp"

    def __init__(self, config: SweepConfiguration, space: ParameterSpace | None = None) -> None:
        super().__init__(config, space)
        self.encoder = SpaceEncoder(self.space.info)
        self._objectives = [
            (o.metric, -1.0 if o.goal == "maximize" else 1.0, o.weight) for o in config.objectives
        ]
        self._weights = np.asarray([o.weight for o in config.objectives], dtype=float)
        self._constraints = [SlackFunction(t) for t in config.constraints.metrics]
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

    # -- the model -----------------------------------------------------------------------------

    def _model_ready(self, usable: int, in_flight: int) -> bool:
        """The startup design is covered once its runs are done or in flight.

        Waiting for all of them to finish would leave the first few workers' next picks to the
        space-filling order too (11 space-filling runs instead of 8 with 4 workers). A model
        needs a few results, though: half the design, and at least 3.
        """
        startup = self.startup_points
        return usable >= max(3, (startup + 1) // 2) and usable + in_flight >= startup

    def _fit(
        self, rows: Sequence[Row], in_flight: int, previous: OptimizationRecommendation | None
    ) -> _Model:
        """Fit the models on ``rows``; the state is None until the startup design is covered."""
        obs = build_observations(list(rows), self.encoder, self._objectives, self._constraints)
        old = previous.kernels if previous is not None else {}
        warm = {
            k: KernelParams(np.asarray(v.length_scales), v.scale, v.noise, v.mean) for k, v in old.items()
        }
        state = None
        if self._objectives and self.encoder.width and self._model_ready(int(obs.usable.sum()), in_flight):
            rng = np.random.default_rng([self.config.seed, len(rows)])
            scalarizer = Scalarizer.fit(
                obs.values[obs.usable], self._weights, self.options.multi_objective, rng
            )
            o = self.options
            settings = FitSettings(o.max_training_points, o.fit_points, o.output_warping)
            state = fit_state(obs, scalarizer, settings, warm)  # updates warm with the new fits
        kernels = {
            k: KernelFit(tuple(p.length_scales.tolist()), p.scale, p.noise, p.mean) for k, p in warm.items()
        }
        return _Model(state, obs, kernels)

    # -- coverage ------------------------------------------------------------------------------

    def _reserved(self, runs: int) -> int:
        return max(0, math.floor(self.options.coverage_share * runs + 1e-9) - self.startup_points)

    def _head_kinds(self, runs: int) -> list[str]:
        return [
            "coverage" if self._reserved(runs + j + 1) > self._reserved(runs + j) else "model"
            for j in range(self.options.batch_size)
        ]

    def _coverage(self, runs: int) -> Coverage:
        filling = min(runs, self.startup_points) + self._reserved(runs)
        return Coverage(self.options.coverage_share, self.startup_points, runs, filling)

    # -- the refit -----------------------------------------------------------------------------

    def _analyze(self, inputs: RefitInputs) -> OptimizationRecommendation:
        # One BLAS thread: a refit shares its machine with the coordinator or a worker, and on
        # two cores BLAS threads made the 500 x 10,000 refit 1.5x slower (benchmarks/optimizer.py).
        with threadpool_limits(1):
            return self._refit(inputs)

    def _refit(self, inputs: RefitInputs) -> OptimizationRecommendation:
        U = self._encode(inputs.pending, inputs.added)
        flight = _finite(self._encode(inputs.in_flight, inputs.added))
        run = _finite(encode_rows(self.encoder, inputs.run_rows))
        model = self._fit(inputs.rows, len(inputs.in_flight), inputs.previous)
        low_shot, promote = self._low_shot_candidates(model)
        stops, spared = self._early_stops(inputs, low_shot)
        common: dict[str, Any] = {
            "early_stops": stops,
            "promote_to_full_shots": (*promote, *spared),
            "sampler": self.name,
            "coverage": self._coverage(inputs.runs),
            "kernels": model.kernels,
        }
        if model.state is None:
            scores = self._startup_scores(U, np.vstack([run, flight]))
            rec = OptimizationRecommendation(
                priority_adjustments=dict(zip(inputs.pending.tolist(), scores.tolist(), strict=True)),
                phase="startup" if self._objectives else "space_filling",
                **common,
            )
        else:
            rec = self._model_recommendation(inputs, model.state, model.obs, U, flight, run, common)
        return replace(rec, summary=self._summary(rec, inputs, model.obs))

    def _startup_scores(self, U: np.ndarray, existing: np.ndarray) -> np.ndarray:
        ok = np.flatnonzero(np.all(np.isfinite(U), axis=1))
        scores = np.zeros(len(U))
        if self.encoder.width == 0:
            return rank_scores(len(U))  # no parameter varies: every point is the same, keep their order
        order = startup_order(self.encoder, U[ok], existing, self.startup_points, seed=self.config.seed)
        scores[ok[order]] = rank_scores(len(U))[: len(order)]
        return scores

    def _plan(
        self,
        state: ModelState,
        obs: Observations,
        U: np.ndarray,
        ok: np.ndarray,
        flight: np.ndarray,
        run: np.ndarray,
        runs: int,
    ) -> Plan:
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
        return plan_order(
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

    def _model_recommendation(
        self,
        inputs: RefitInputs,
        state: ModelState,
        obs: Observations,
        U: np.ndarray,
        flight: np.ndarray,
        run: np.ndarray,
        common: dict[str, Any],
    ) -> OptimizationRecommendation:
        pending = inputs.pending
        ok = np.flatnonzero(np.all(np.isfinite(U), axis=1) & self._valid(U))
        plan = self._plan(state, obs, U, ok, flight, run, inputs.runs)
        total = len(pending) + sum(p.kind == "refinement" for p in plan.picks)
        scores = iter(rank_scores(total).tolist())
        priorities: dict[int, float] = {}
        refinements: list[tuple[dict[str, Any], float]] = []
        for pick in plan.picks:  # the head, in order
            if pick.kind == "refinement":
                refinements.append((self._decode_point(pick.point), next(scores)))
            else:
                priorities[int(pending[ok[pick.candidate]])] = next(scores)
        for pos in plan.order:  # then the rest of the valid candidates
            index = int(pending[ok[pos]])
            if index not in priorities:
                priorities[index] = next(scores)
        for index in pending[np.setdiff1d(np.arange(len(pending)), ok)]:  # invalid points last
            priorities[int(index)] = next(scores, 0.0)
        kinds = [p.kind for p in plan.picks]
        return OptimizationRecommendation(
            priority_adjustments=priorities,
            refinement_points=tuple(p for p, _ in refinements),
            refinement_scores=tuple(s for _, s in refinements),
            phase="model",
            confidence_level=state.confidence,
            promising_regions=tuple(self._region(r, state) for r in plan.regions),
            incumbent=self._incumbent(state, obs),
            head=HeadPlan(kinds.count("model"), kinds.count("coverage"), kinds.count("refinement")),
            **common,
        )

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

    def _incumbent(self, state: ModelState, obs: Observations) -> Incumbent | None:
        if state.incumbent is None or state.best is None:
            return None
        row = obs.rows[state.incumbent]
        return Incumbent(
            row.experiment_id,
            row.index,
            plain(dict(row.parameters)),
            plain({m: row.metrics.get(m) for m, _, _ in self._objectives}),
            float(self._objective_units(state, state.best)),
        )

    # -- shots as fidelity ---------------------------------------------------------------------

    def _promotion_margin(self, state: ModelState | None, row: Row) -> float | None:
        """Optimistic bound minus incumbent (standardized); > 0 means do not promote."""
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
            float(var[0]),  # type: ignore[index]
            observed,
            noise,
            beta=self.options.early_stopping.promotion_beta,
        )
        return bound - state.best

    def _low_shot_candidates(self, model: _Model) -> tuple[list[StopCandidate], list[str]]:
        """Low-shot runs without a full-shot result: stop candidates, and those to promote."""
        es = self.options.early_stopping
        if not es.enabled or es.low_fidelity_share is None:
            return [], []
        obs = model.obs
        full = {tuple(np.round(x, 9)) for x, r in zip(obs.X, obs.rows, strict=True) if r.fidelity >= 1.0}
        candidates: list[StopCandidate] = []
        promote: list[str] = []
        for x, row in zip(obs.X, obs.rows, strict=True):
            if row.status != "completed" or row.fidelity >= 1.0 or tuple(np.round(x, 9)) in full:
                continue
            margin = self._promotion_margin(model.state, row)
            if margin is not None and margin > 0:
                candidates.append(StopCandidate(row.experiment_id, "not promoted", margin, low_shot=True))
            else:
                promote.append(row.experiment_id)
        return candidates, promote

    def _stops_low_shot_run(
        self, experiment_params: Mapping[str, Any], metrics: Mapping[str, Any], rows: Sequence[Row]
    ) -> bool:
        values = {
            k: float(v)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and k not in ("shot_fraction", "shots")
        }
        share = metrics.get("shot_fraction", self.options.early_stopping.low_fidelity_share or 1.0)
        row = Row(
            "",
            -1,
            "completed",
            dict(experiment_params),
            values,
            {"shot_fraction": share, "shots": metrics.get("shots")},
        )
        with threadpool_limits(1):
            margin = self._promotion_margin(self._fit(rows, 0, None).state, row)
        return margin is not None and margin > 0

    # -- reporting -----------------------------------------------------------------------------

    def _summary(self, rec: OptimizationRecommendation, inputs: RefitInputs, obs: Observations) -> str:
        parts = [f"{len(inputs.rows)} results, {int(obs.usable.sum())} usable by the model"]
        if rec.phase != "model":
            parts.append(f"{rec.phase} order ({self.startup_points} startup points)")
        else:
            head = rec.head or HeadPlan()
            parts.append(
                f"head: {head.model} model, {head.coverage} coverage, {head.refinement} refinement picks"
            )
            if rec.incumbent is not None:
                parts.append(f"incumbent {rec.incumbent.value:.6g} ({rec.incumbent.experiment_id})")
            parts.append(f"confidence {rec.confidence_level:.2f}")
        previous = inputs.previous
        if previous is not None:
            k = self.options.batch_size
            new = set(rec.top(k)) - set(previous.top(k))
            parts.append(f"{len(new)} of the top {k} are new since the last refit")
            if previous.incumbent and rec.incumbent and previous.incumbent.value != rec.incumbent.value:
                parts.append(f"incumbent moved from {previous.incumbent.value:.6g}")
        if rec.early_stops:
            parts.append(f"{len(rec.early_stops)} to stop early")
        cov = rec.coverage
        if cov is not None:
            parts.append(
                f"coverage {cov.space_filling_runs}/{cov.runs} space-filling runs "
                f"(target {cov.target_share:.0%})"
            )
        return "; ".join(parts) + "."
