"""The optimizer against a live sweep: read its state from Redis, refit, re-score pending work.

Called by the beat task (``orchestrator.optimize`` on the ``control`` queue) and, in-process, by
every coordinator, so no separate beat is needed. Everything it reads is in Redis (results reach
the optimizer through the sweep's ``obs`` hash, written by the coordinator), so it can run on any
machine. Two refits at once (two beats by mistake) cannot corrupt priorities: a short lock keeps
the second out, scores are a deterministic function of the state, and ``ZADD XX`` only changes
the score of experiments still pending, never re-adding one that was published meanwhile.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any

import numpy as np

from orchestrator.config import SweepConfiguration
from orchestrator.optimizer.optimizer import AdaptiveOptimizer
from orchestrator.optimizer.recommendation import OptimizationRecommendation
from orchestrator.plan import SweepPlan
from orchestrator.settings import Settings
from orchestrator.state import PREFIX, RESOURCE_QUEUES, SweepState

log = logging.getLogger(__name__)

HISTORY = 100
# One optimizer per sweep and process, so that each refit starts its kernel fit from the last
# one's hyperparameters (the sweep id is a hash of the configuration: the entry never goes stale).
_CACHED = 16
_optimizers: OrderedDict[str, AdaptiveOptimizer] = OrderedDict()
_optimizers_lock = threading.Lock()


def _optimizer(sweep_id: str, config: SweepConfiguration, plan: SweepPlan) -> AdaptiveOptimizer:
    with _optimizers_lock:
        opt = _optimizers.pop(sweep_id, None) or AdaptiveOptimizer(config, plan.space)
        _optimizers[sweep_id] = opt
        while len(_optimizers) > _CACHED:
            _optimizers.popitem(last=False)
        return opt


def refit_all(state: SweepState, settings: Settings | None = None) -> int:
    """Refit every running adaptive sweep; returns how many were refitted."""
    done = 0
    for sweep_id in sorted(state.r.smembers(f"{PREFIX}sweeps")):
        meta = state.meta(sweep_id)
        if meta.get("state") != "running" or not meta.get("config"):
            continue
        if not json.loads(meta["config"]).get("adaptive_sampling", True):
            continue
        try:
            if refit_sweep(state, sweep_id) is not None:
                done += 1
        except Exception:  # noqa: BLE001 - one sweep's failure must not stop the others' refits
            log.exception("refit of %s failed", sweep_id)
    return done


def observations(state: SweepState, sweep_id: str) -> list[dict[str, Any]]:
    """The sweep's finished results in the optimizer's shape (from the ``obs`` hash)."""
    return [json.loads(v) for v in state.r.hvals(state.key(sweep_id, "obs"))]


def refit_sweep(state: SweepState, sweep_id: str) -> OptimizationRecommendation | None:
    """Refit one sweep and apply the recommendation; None if another refit holds the lock."""
    r = state.r
    lock, token = state.key(sweep_id, "optimizer:lock"), uuid.uuid4().hex
    if not r.set(lock, token, nx=True, ex=120):
        return None
    try:
        meta = state.meta(sweep_id)
        config = SweepConfiguration.model_validate_json(meta["config"])
        plan = SweepPlan(config, json.loads(meta["code_versions"]))
        pending = _pending(state, sweep_id)
        low_done = [int(i) for i, s in r.hgetall(state.key(sweep_id, "stage")).items() if s == "low_done"]
        # curves of running experiments that report intermediate values (median rule)
        partials = {eid: json.loads(v) for eid, v in r.hgetall(state.key(sweep_id, "partials")).items()}
        if not pending and not low_done and not partials:
            return None
        in_flight = _in_flight(state, sweep_id)
        added = {int(k): json.loads(v) for k, v in r.hgetall(state.key(sweep_id, "added")).items()}
        previous = (
            OptimizationRecommendation.from_dict(json.loads(meta["optimizer"]))
            if meta.get("optimizer")
            else None
        )
        # distinct experiments: a promoted low-shot run has a result and waits for its full run
        size = len(set(pending) | set(in_flight) | {int(i) for i in r.hkeys(state.key(sweep_id, "obs"))})
        started = time.perf_counter()
        rec = _optimizer(sweep_id, config, plan).analyze_results(
            observations(state, sweep_id),
            plan.point_of(np.fromiter(pending, dtype=np.int64)),
            plan.point_of(np.asarray(in_flight, dtype=np.int64)),
            added=added,
            partials=partials,
            previous=previous,
            sweep_size=size,
        )
        update_priorities(state, sweep_id, rec, plan)
        if config.optimizer.refinement and rec.refinement_points:
            add_points(state, sweep_id, plan, rec)
        if rec.early_stop_candidates:
            stop_early(state, sweep_id, plan, rec)
            stop_running(state, sweep_id, [eid for eid in rec.early_stop_candidates if eid in partials])
        # Low-shot runs wait for a model to judge them, unless nothing else is left to run.
        if low_done and (rec.phase == "model" or not (pending or in_flight)):
            decide_low_fidelity(state, sweep_id, plan, rec, low_done)
        record = rec.to_dict(include_priorities=False)
        record["refit_seconds"] = round(time.perf_counter() - started, 4)
        pipe = r.pipeline()
        pipe.hset(state.key(sweep_id, "meta"), "optimizer", json.dumps(record))
        pipe.lpush(state.key(sweep_id, "optimizer:history"), json.dumps(record))
        pipe.ltrim(state.key(sweep_id, "optimizer:history"), 0, HISTORY - 1)
        pipe.execute()
        return rec
    finally:
        if r.get(lock) == token:
            r.delete(lock)


def update_priorities(
    state: SweepState, sweep_id: str, rec: OptimizationRecommendation, plan: SweepPlan | None = None
) -> bool:
    """Rewrite the pending scores from ``rec`` (the seed's ``update_priorities``)."""
    if plan is None:
        meta = state.meta(sweep_id)
        plan = SweepPlan(
            SweepConfiguration.model_validate_json(meta["config"]), json.loads(meta["code_versions"])
        )
    changed = 0
    for queue in RESOURCE_QUEUES:
        key = state.pending_key(sweep_id, queue)
        members = state.r.zrange(key, 0, -1)
        if not members:
            continue
        points = plan.point_of(np.asarray(members, dtype=np.int64)).tolist()
        scores = {
            m: rec.priority_adjustments[p]
            for m, p in zip(members, points, strict=True)
            if p in rec.priority_adjustments
        }
        items = list(scores.items())
        for lo in range(0, len(items), 10_000):
            changed += state.r.zadd(key, dict(items[lo : lo + 10_000]), xx=True, ch=True)
    return changed > 0


def add_points(state: SweepState, sweep_id: str, plan: SweepPlan, rec: OptimizationRecommendation) -> int:
    """Add the refinement points as new experiments (indices past the lazy product), marked added."""
    r = state.r
    key = state.key(sweep_id, "added")
    base = plan.space.size
    added = 0
    for params, score in zip(
        rec.refinement_points, rec.refinement_scores or [1.0] * len(rec.refinement_points), strict=False
    ):
        point = base + int(r.hincrby(state.key(sweep_id, "meta"), "n_added_points", 1)) - 1
        r.hset(key, point, json.dumps(params))
        indices = plan.experiment_indices(np.asarray([point]))
        pipe = r.pipeline(transaction=True)
        for index in indices.tolist():
            _, _, spec = plan.decompose(index)
            pipe.zadd(state.pending_key(sweep_id, spec.resource), {str(index): float(score)}, nx=True)
        pipe.hincrby(state.key(sweep_id, "meta"), "total", len(indices))
        pipe.execute()
        added += len(indices)
    if added:
        state.event(sweep_id, "info", f"optimizer added {added} refinement experiment(s)")
    return added


def stop_early(state: SweepState, sweep_id: str, plan: SweepPlan, rec: OptimizationRecommendation) -> int:
    """Mark the recommended pending experiments early-stopped (they keep a row with that status)."""
    from orchestrator.models import ExperimentResult, ExperimentStatus
    from orchestrator.results import result_row

    wanted = set(rec.early_stop_candidates)
    promoted = {i for i, s in state.r.hgetall(state.key(sweep_id, "stage")).items() if s == "full"}
    stopped = 0
    for queue in RESOURCE_QUEUES:
        key = state.pending_key(sweep_id, queue)
        for member in state.r.zrange(key, 0, -1):
            if member in promoted:  # decided already: it runs at full shots
                continue
            exp = plan.experiment(int(member), _added_params(state, sweep_id, plan, int(member)))
            if exp.experiment_id not in wanted or not state.r.zrem(key, member):
                continue
            reason = rec.resource_reallocation.get("stop_reasons", {}).get(exp.experiment_id, "optimizer")
            row = result_row(
                ExperimentResult(
                    experiment_id=exp.experiment_id,
                    project_name=exp.project,
                    parameters=exp.parameters,
                    status=ExperimentStatus.EARLY_STOPPED,
                    error_message=f"stopped early ({reason})",
                    sweep_id=sweep_id,
                    index=exp.index,
                    repeat=exp.repeat,
                    resource=exp.resource,
                    device=exp.device,
                    added=exp.added,
                )
            )
            state.record(sweep_id, exp.index, exp.experiment_id, row, status="early_stopped", final=True)
            stopped += 1
    return stopped


def stop_running(state: SweepState, sweep_id: str, experiment_ids: list[str]) -> int:
    """Ask running experiments to stop: each ends at its next ``report`` with an early-stopped row."""
    if not experiment_ids:
        return 0
    fresh = state.r.sadd(state.key(sweep_id, "stop"), *experiment_ids)
    if fresh:
        state.event(sweep_id, "info", f"median rule: stopping {fresh} running experiment(s)")
    return int(fresh)


def decide_low_fidelity(
    state: SweepState, sweep_id: str, plan: SweepPlan, rec: OptimizationRecommendation, low_done: list[int]
) -> tuple[int, int]:
    """Shots as a budget: each low-shot run is stopped (its partial metrics kept) when the model
    says even its optimistic bound cannot beat the incumbent, else promoted to its full shots.

    Returns ``(promoted, stopped)``. The optimizer caps the stops at ``max_stopped_share``.
    """
    from orchestrator.models import ExperimentResult, ExperimentStatus
    from orchestrator.results import result_row

    r = state.r
    stop = set(rec.early_stop_candidates)
    reasons = rec.resource_reallocation.get("stop_reasons", {})
    promoted = stopped = 0
    for index in low_done:
        raw = r.hget(state.key(sweep_id, "obs"), index)
        if raw is None:
            continue
        seen = json.loads(raw)
        exp = plan.experiment(index, _added_params(state, sweep_id, plan, index))
        if seen.get("experiment_id") in stop:
            row = result_row(
                ExperimentResult(
                    experiment_id=exp.experiment_id,
                    project_name=exp.project,
                    parameters=seen["parameters"],
                    metrics=seen["metrics"],
                    status=ExperimentStatus.EARLY_STOPPED,
                    sweep_id=sweep_id,
                    index=index,
                    repeat=exp.repeat,
                    resource=exp.resource,
                    device=exp.device,
                    added=exp.added,
                    extra=seen["extra"],
                    error_message=f"stopped at {seen['extra'].get('shot_fraction', 0):.0%} of its shots "
                    f"({reasons.get(seen.get('experiment_id'), 'cannot beat the incumbent')})",
                )
            )
            if state.record(sweep_id, index, exp.experiment_id, row, status="early_stopped", final=True):
                stopped += 1
            r.hset(state.key(sweep_id, "stage"), index, "stopped")
        else:
            pipe = r.pipeline(transaction=True)
            pipe.hset(state.key(sweep_id, "stage"), index, "full")
            pipe.zadd(state.pending_key(sweep_id, exp.resource), {str(index): 2.0})  # above every score
            pipe.execute()
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
    raw = state.r.hget(state.key(sweep_id, "added"), point)
    return json.loads(raw) if raw else None


def _pending(state: SweepState, sweep_id: str) -> list[int]:
    out: list[int] = []
    for queue in RESOURCE_QUEUES:
        out.extend(int(m) for m in state.r.zrange(state.pending_key(sweep_id, queue), 0, -1))
    return out


def _in_flight(state: SweepState, sweep_id: str) -> list[int]:
    out = [int(i) for i in state.r.hkeys(state.key(sweep_id, "running"))]
    for queue in RESOURCE_QUEUES:
        out.extend(int(m) for m in state.r.smembers(state.queued_key(sweep_id, queue)))
    return out
