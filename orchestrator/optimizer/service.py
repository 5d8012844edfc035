"""The optimizer against a live sweep: read its state from Redis, refit, re-score pending work.

Called by the beat task (``orchestrator.optimize`` on the ``control`` queue) and, in-process, by
every coordinator, so no separate beat is needed. Everything it reads is in Redis (results reach
the optimizer through the sweep's ``obs`` hash, written by the workers), so it can run on any
machine. Two refits at once (two beats by mistake) cannot corrupt priorities: a lock keeps the
second out, scores are a deterministic function of the state, and re-scoring only changes the
score of experiments still pending (see :mod:`orchestrator.store.optimizer`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from core.config import SweepConfiguration
from core.expectations import is_violation
from core.order import walk_order
from core.plan import SweepPlan
from core.project import FIDELITY
from core.protocol import Lifecycle
from core.settings import Settings
from orchestrator.optimizer import create_optimizer
from orchestrator.optimizer.missing_metrics import ReportedMetrics, pause_on_alert
from orchestrator.optimizer.pool import NEIGHBOURHOODS, POOL_SIZE, best_points, candidate_pool
from orchestrator.optimizer.recommendation import OptimizationRecommendation
from orchestrator.store import SweepState

log = logging.getLogger(__name__)


def refit_all(state: SweepState, settings: Settings | None = None) -> int:
    """Refit every running adaptive sweep; returns how many were refitted."""
    done = 0
    for sweep_id in sorted(state.served()):
        meta = state.meta(sweep_id)
        if meta.get("state") != Lifecycle.RUNNING or not meta.get("config"):
            continue
        raw = json.loads(meta["config"])
        ladder = any(p.get("fidelities") for p in raw.get("projects", []))
        if not raw.get("adaptive_sampling", True) and not ladder:  # a ladder's refit promotes
            continue
        try:
            pool = settings.candidate_pool if settings is not None else POOL_SIZE
            if refit_sweep(state, sweep_id, pool_size=pool) is not None:
                done += 1
        except Exception:  # noqa: BLE001 - one sweep's failure must not stop the others' refits
            log.exception("refit of %s failed", sweep_id)
    return done


def observations(state: SweepState, sweep_id: str) -> list[dict[str, Any]]:
    """The sweep's finished results in the optimizer's shape (from the ``obs`` hash)."""
    return state.optimizer().observations(sweep_id)


def refit_sweep(
    state: SweepState, sweep_id: str, *, pool_size: int = POOL_SIZE
) -> OptimizationRecommendation | None:
    """Refit one sweep and apply the recommendation; None if another refit holds the lock.

    ``pool_size`` bounds the points scored (``settings.candidate_pool``; see
    :mod:`orchestrator.optimizer.pool`)."""
    store = state.optimizer()
    with store.refit_lock(sweep_id) as held:
        return _refit(state, sweep_id, pool_size) if held else None


def _refit(state: SweepState, sweep_id: str, pool_size: int) -> OptimizationRecommendation | None:
    from orchestrator.optimizer.ladder import promote_ladders

    store = state.optimizer()
    meta = state.meta(sweep_id)
    config = SweepConfiguration.model_validate_json(meta["config"])
    plan = SweepPlan.of(config, meta)
    # read once: the fit's rows are the same snapshot less the violations it may leave out
    seen = store.observations(sweep_id)
    reported = ReportedMetrics(config)
    reported.see(seen)
    if (alert := reported.problem()) is not None:  # the model would steer by nothing
        pause_on_alert(state, sweep_id, alert)
        return None
    added = store.added(sweep_id)
    ladder = {name for name, spec in plan.projects.items() if spec.fidelities}
    pending = [int(m) for members in store.pending(sweep_id).values() for m in members]
    if promoted := [p for p, params in added.items() if FIDELITY in params]:
        # a promotion keeps its score: first in line, not re-ranked with the first rung's points
        keep = ~np.isin(_points(plan, pending), promoted)
        pending = np.asarray(pending, dtype=np.int64)[keep].tolist()
    if ladder and not config.adaptive_sampling:  # a fixed order: the refit only promotes
        promote_ladders(state, sweep_id, plan, seen, _points(plan, pending + store.in_flight(sweep_id)))
        return None
    low_done = store.in_stage(sweep_id, "low_done") + store.in_stage(sweep_id, "stopping")
    unwalked = meta.get("fill_done") != "1"
    if not pending and not low_done and not unwalked:
        if ladder:
            promote_ladders(state, sweep_id, plan, seen, _points(plan, store.in_flight(sweep_id)))
        return None
    in_flight = store.in_flight(sweep_id)
    previous = (
        OptimizationRecommendation.from_dict(json.loads(meta["optimizer"])) if meta.get("optimizer") else None
    )
    started = time.perf_counter()
    points, fresh = _pool(state, sweep_id, plan, meta, pending, seen, previous, pool_size)
    fit = (
        seen
        if config.optimizer.fit_violations
        else [o for o in seen if not is_violation(o.get("validation"))]
    )
    if ladder:
        # the first rung is every point's: the pending points' scores come from it alone (a
        # higher rung's value at the same parameters is another device's, not a repeat)
        fit = [
            o for o in fit if not (o.get("project") in ladder and (o.get("parameters") or {}).get(FIDELITY))
        ]
    # the previous recommendation carries the kernel fit this refit starts from, whichever
    # process made it. Running curves are not passed: workers judge them at each report.
    rec = create_optimizer(config, plan.space).analyze_results(
        fit,
        points,
        plan.point_of(np.asarray(in_flight, dtype=np.int64)),
        added=added,
        previous=previous,
        sweep_size=int(meta.get("total") or 0) or None,
    )
    update_priorities(state, sweep_id, rec, plan)
    pick(state, sweep_id, rec, fresh, config.optimizer.batch_size)
    if config.optimizer.refinement and rec.refinement_points:
        add_points(state, sweep_id, plan, rec)
    if rec.early_stop_candidates:
        stop_early(state, sweep_id, plan, rec)
    if config.optimizer.early_stopping.low_fidelity_share:
        publish_threshold(state, sweep_id, config, rec)
    # Low-shot runs are judged by their rung as they finish (workers); what a rung never got
    # enough peers to decide, the model decides once nothing else is left to run.
    if low_done and not (pending or in_flight):
        decide_low_fidelity(state, sweep_id, plan, rec, low_done)
    if ladder:
        waiting = np.concatenate([points, _points(plan, in_flight)])
        promote_ladders(state, sweep_id, plan, seen, waiting)
    record = rec.to_dict(include_priorities=False)
    record["refit_seconds"] = round(time.perf_counter() - started, 4)
    store.save_refit(sweep_id, record)
    return rec


def _points(plan: SweepPlan, indices: list[int]) -> np.ndarray:
    return plan.point_of(np.asarray(indices, dtype=np.int64))


@contextmanager
def settling(state: SweepState, sweep_id: str, plan: SweepPlan, total: int) -> Iterator[bool]:
    """Whether a ladder sweep whose experiments are all done (``total`` of them, as the caller
    counted) may complete: its last promotions are decided first (nothing is left on the first
    rung, so the policy promotes whatever is worth its price). True when none was made and no
    refit added one since ``total`` was read; False when a refit holds the lock (ask again).

    The refit lock is held for the block: the caller completes the sweep inside it, so no refit
    promotes a point between this decision and the sweep's end.
    """
    from orchestrator.optimizer.ladder import promote_ladders

    store = state.optimizer()
    with store.refit_lock(sweep_id) as held:
        if not held:
            yield False
            return
        made = promote_ladders(state, sweep_id, plan, store.observations(sweep_id), [])
        yield not made and int(state.meta(sweep_id).get("total") or 0) <= total


def _pool(
    state: SweepState,
    sweep_id: str,
    plan: SweepPlan,
    meta: dict[str, str],
    pending: list[int],
    seen: list[dict[str, Any]],
    previous: OptimizationRecommendation | None,
    size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The points this refit scores, and those of them not materialised (see :func:`candidate_pool`)."""
    points = plan.point_of(np.fromiter(pending, dtype=np.int64))
    if meta.get("fill_done") == "1":
        return points, np.zeros(0, dtype=np.int64)
    near = best_points(plan.config, seen, NEIGHBOURHOODS)
    if previous is not None and previous.incumbent is not None:
        near.append(previous.incumbent.index)
    near_points = plan.point_of(np.asarray(near, dtype=np.int64))
    return candidate_pool(
        plan.space,
        walk_order(plan),
        int(meta.get("fill_cursor") or 0),
        points,
        near_points[near_points < plan.space.size],
        lambda p: state.pending.picked(sweep_id, p),
        size,
    )


def pick(
    state: SweepState, sweep_id: str, rec: OptimizationRecommendation, fresh: np.ndarray, head: int
) -> int:
    """Offer the best points of the pool that are not materialised yet to the coordinator's next
    fill (``picks``): those ranked among the first ``max(2 * head, 64)`` of the pool."""
    if not len(fresh):
        return 0
    top = rec.top(max(2 * head, 64))
    chosen = {p: rec.priority_adjustments[p] for p in set(top) & set(fresh.tolist())}
    state.optimizer().offer_picks(sweep_id, chosen)
    return len(chosen)


def update_priorities(
    state: SweepState, sweep_id: str, rec: OptimizationRecommendation, plan: SweepPlan | None = None
) -> bool:
    """Rewrite the pending scores from ``rec`` (the seed's ``update_priorities``)."""
    if plan is None:
        meta = state.meta(sweep_id)
        plan = SweepPlan.of(SweepConfiguration.model_validate_json(meta["config"]), meta)
    store, changed = state.optimizer(), 0
    for queue, members in store.pending(sweep_id).items():
        if not members:
            continue
        points = plan.point_of(np.asarray(members, dtype=np.int64)).tolist()
        scores = {
            m: rec.priority_adjustments[p]
            for m, p in zip(members, points, strict=True)
            if p in rec.priority_adjustments
        }
        changed += store.rescore(sweep_id, queue, scores)
    return changed > 0


def add_points(state: SweepState, sweep_id: str, plan: SweepPlan, rec: OptimizationRecommendation) -> int:
    """Add the refinement points as new experiments (indices past the lazy product), marked added."""
    store, added = state.optimizer(), 0
    for params, score in zip(
        rec.refinement_points, rec.refinement_scores or [1.0] * len(rec.refinement_points), strict=False
    ):
        point = store.next_added_point(sweep_id, plan.space.size, dict(params))
        plan.added[point] = dict(params)  # a ladder project's queue is its rung's, read from them
        indices = plan.experiment_indices(np.asarray([point])).tolist()
        store.add_pending(sweep_id, [(plan.resource_of(i, dict(params)), i, float(score)) for i in indices])
        added += len(indices)
    if added:
        state.event(sweep_id, "info", f"optimizer added {added} refinement experiment(s)")
    return added


def stop_early(state: SweepState, sweep_id: str, plan: SweepPlan, rec: OptimizationRecommendation) -> int:
    """Mark the recommended pending experiments early-stopped (they keep a row with that status)."""
    from core.models import ExperimentResult, ExperimentStatus
    from core.rows import result_row

    wanted = set(rec.early_stop_candidates)
    store = state.optimizer()
    share = plan.config.optimizer.early_stopping.max_stopped_share
    promoted = {str(i) for i in store.in_stage(sweep_id, "full")}
    stopped = 0
    for queue, members in store.pending(sweep_id).items():
        for member in members:
            if member in promoted:  # decided already: it runs at full shots
                continue
            exp = plan.experiment(int(member), _added_params(state, sweep_id, plan, int(member)))
            if exp.experiment_id not in wanted or not state.pruning().try_stop(
                sweep_id, exp.experiment_id, share
            ):
                continue
            if not store.withdraw(sweep_id, queue, member):
                continue
            reason = rec.stop_reason(exp.experiment_id)
            row = result_row(
                ExperimentResult.of(
                    exp, status=ExperimentStatus.EARLY_STOPPED, error_message=f"stopped early ({reason})"
                )
            )
            state.record(sweep_id, exp.index, exp.experiment_id, row, status="early_stopped", final=True)
            stopped += 1
    return stopped


def stop_running(state: SweepState, sweep_id: str, experiment_ids: list[str]) -> int:
    """Ask running experiments to stop: each ends at its next ``report`` with an early-stopped row."""
    if not experiment_ids:
        return 0
    fresh = state.optimizer().stop_running(sweep_id, experiment_ids)
    if fresh:
        state.event(sweep_id, "info", f"stopping {fresh} running experiment(s)")
    return int(fresh)


def publish_threshold(
    state: SweepState, sweep_id: str, config: SweepConfiguration, rec: OptimizationRecommendation
) -> None:
    """Publish the incumbent (signed: lower is better) for workers to compare low-shot runs with:
    a run whose optimistic bound is worse cannot beat the best. One objective only (a weighted
    or Pareto incumbent has no single value a low-shot run can be held to)."""
    value = None
    if len(config.objectives) == 1 and rec.incumbent is not None:
        first = config.objectives[0]
        metric = rec.incumbent.metrics.get(first.metric)
        if isinstance(metric, (int, float)):
            value = (-1.0 if first.goal == "maximize" else 1.0) * float(metric)
    state.pruning().publish_threshold(sweep_id, value)


def decide_low_fidelity(
    state: SweepState, sweep_id: str, plan: SweepPlan, rec: OptimizationRecommendation, low_done: list[int]
) -> tuple[int, int]:
    """Shots as a budget: each low-shot run is stopped (its partial metrics kept) when the model
    says even its optimistic bound cannot beat the incumbent, else promoted to its full shots.

    Returns ``(promoted, stopped)``. The optimizer caps the stops at ``max_stopped_share``.
    """
    from core.models import ExperimentResult, ExperimentStatus
    from core.rows import result_row

    store, pruning = state.optimizer(), state.pruning()
    share = plan.config.optimizer.early_stopping.max_stopped_share
    stop = set(rec.early_stop_candidates)
    stopping = set(store.in_stage(sweep_id, "stopping"))  # a rung stopped it; its worker died
    promoted = stopped = 0
    for index in low_done:
        seen = store.observation(sweep_id, index)
        if seen is None:
            continue
        exp = plan.experiment(index, _added_params(state, sweep_id, plan, index))
        eid = str(seen.get("experiment_id"))
        shots, fraction = seen["extra"].get("shots"), seen["extra"].get("shot_fraction") or 1.0
        saved = shots / fraction - shots if isinstance(shots, (int, float)) else 0.0
        if index in stopping or (
            eid in stop and pruning.try_stop(sweep_id, eid, share, rule="refit", step=-1, shots_saved=saved)
        ):
            row = result_row(
                ExperimentResult.of(
                    exp,
                    parameters=seen["parameters"],
                    metrics=seen["metrics"],
                    status=ExperimentStatus.EARLY_STOPPED,
                    extra=seen["extra"],
                    error_message=f"stopped at {seen['extra'].get('shot_fraction', 0):.0%} of its shots "
                    f"({rec.stop_reason(seen['experiment_id'], 'cannot beat the incumbent')})",
                )
            )
            if state.record(sweep_id, index, exp.experiment_id, row, status="early_stopped", final=True):
                stopped += 1
            store.set_stage(sweep_id, index, "stopped")
        else:
            store.promote(sweep_id, exp.resource, index)
            promoted += 1
    if promoted or stopped:
        state.event(
            sweep_id, "info", f"shots as a budget: promoted {promoted} to full shots, stopped {stopped}"
        )
    return promoted, stopped


def _added_params(state: SweepState, sweep_id: str, plan: SweepPlan, index: int) -> dict[str, Any] | None:
    point = int(plan.point_of(np.asarray([index]))[0])
    if point < plan.space.size:
        return None
    return state.optimizer().added_point(sweep_id, point)
