"""A fidelity ladder's promotions in a live sweep: the mechanism under the policy.

A promotion adds the ladder project's experiments of one point on a higher rung: an
optimizer-added point (past the lazy product, as refinement points are) whose parameters are the
point's plus ``fidelity: k``, each repeat of the ladder project only (the sweep's other projects
do not run it again), waiting in the rung's queue (:attr:`core.project.Rung.queue`) with a score
above every refit score, so it is first in line. The promotion is recorded in the same Lua step
that adds it (:meth:`OptimizerStore.add_promotion`), so a point reaches a rung at most once across
refits, coordinator restarts and two coordinators. Which points climb is the policy's
(:mod:`orchestrator.optimizer.promotion`), run by every refit (:func:`promote_ladders`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from core.plan import SweepPlan
from core.project import FIDELITY, ProjectSpec, is_managed
from core.protocol import Lifecycle
from orchestrator.optimizer._gp.encoding import SpaceEncoder
from orchestrator.optimizer._inputs import point_columns
from orchestrator.optimizer.promotion import LadderView, Promotion, decide, point_key, promotion_cost
from orchestrator.store import SweepState

log = logging.getLogger(__name__)

#: a promoted experiment's score: above every refit score, in (0, 1], and above shots-as-a-budget's
#: full-shot runs (2.0); the refit's best promotion highest
SCORE = 3.0


def record_of(project: str, parameters: dict[str, Any], rung: int) -> str:
    """The field of the sweep's promotion record for ``project``'s point on ``rung``."""
    return f"{project}|{rung}|{point_key(parameters)}"


def promote(
    state: SweepState,
    sweep_id: str,
    plan: SweepPlan,
    project: str,
    parameters: dict[str, Any],
    rung: int,
    *,
    rank: int = 0,
) -> int | None:
    """Add ``project``'s experiments of the point ``parameters`` on ``rung`` of its ladder.

    Args:
        state: the deployment's sweep state.
        sweep_id: the sweep.
        plan: its plan; the added point's parameters are put in ``plan.added``.
        project: the ladder project (its repeats are added, no other project's).
        parameters: the point's parameters (a ``fidelity`` among them is replaced).
        rung: the rung it climbs to (1 or more).
        rank: its place among this refit's promotions (0 first): the first gets the highest score.

    Returns:
        The added point, or None when the point was promoted to ``rung`` before (nothing added).
    """
    spec = plan.projects[project]
    if not 0 < rung < len(spec.fidelities):
        raise ValueError(f"project {project} has no rung {rung} to promote to")
    params = {**{k: v for k, v in parameters.items() if k != FIDELITY}, FIDELITY: rung}
    record, store = record_of(project, params, rung), state.optimizer()
    if record in store.promotions(sweep_id):
        return None  # checked first, so a repeated call does not use up an added point
    point = store.reserve_point(sweep_id, plan.space.size)
    score = SCORE + 1.0 / (2 + rank)
    if not store.add_promotion(
        sweep_id, record, point, params, spec.fidelities[rung].queue, (plan.indices_of(point, project), score)
    ):
        return None
    plan.added[point] = params
    return point


def promote_ladders(
    state: SweepState,
    sweep_id: str,
    plan: SweepPlan,
    seen: list[dict[str, Any]],
    waiting: Iterable[int],
    prices: Any = None,
) -> list[Promotion]:
    """Run the promotion policy on every ladder project of the sweep and make its promotions.

    Args:
        seen: the sweep's observations (every project, every rung).
        waiting: point indices still to run (pending, in flight, the refit's pool): rung-0 ones
            are the "later" uses of the budget the policy weighs promotions against.
        prices: the price table (default: the deployment's, ``load_price_table()``).

    Returns:
        The promotions made (an event line says which and why).
    """
    ladders = [spec for spec in plan.projects.values() if spec.fidelities]
    if not ladders or state.state(sweep_id) != Lifecycle.RUNNING:  # a closed sweep runs nothing more
        return []
    if prices is None:
        from orchestrator.braket.prices import load_price_table

        prices = load_price_table()
    store = state.optimizer()
    added = store.added(sweep_id)
    plan.added.update(added)
    encoder = SpaceEncoder(plan.space.info)
    made: list[Promotion] = []
    for spec in ladders:
        view = _view(state, sweep_id, plan, spec, seen, added, waiting, prices)
        chosen = [
            p
            for rank, p in enumerate(decide(plan.config, encoder, view, prices))
            if promote(state, sweep_id, plan, spec.name, p.parameters, p.rung, rank=rank) is not None
        ]
        if chosen:
            state.event(sweep_id, "info", _message(spec, chosen, view))
        made += chosen
    return made


def _view(
    state: SweepState,
    sweep_id: str,
    plan: SweepPlan,
    spec: ProjectSpec,
    seen: list[dict[str, Any]],
    added: dict[int, dict[str, Any]],
    waiting: Iterable[int],
    prices: Any,
) -> LadderView:
    store = state.optimizer()
    position, width = plan.project_order.index(spec.name), len(plan.project_order)
    queued = [int(i) for members in store.pending(sweep_id).values() for i in members]
    queued += store.in_flight(sweep_id)
    mine = np.asarray([i for i in queued if i % width == position], dtype=np.int64)
    busy: set[tuple[str, int]] = set()
    unpaid = 0.0  # waiting experiments on paid rungs: not reserved yet (a running one may be)
    for params in _parameters(plan, plan.point_of(mine), added):
        rung = int(params.get(FIDELITY) or 0)
        busy.add((point_key(params), rung))
        if is_managed(spec.fidelities[rung].device):
            unpaid += promotion_cost(spec, params, rung, 1, prices)
    promoted = set()
    for record in store.promotions(sweep_id):
        project, step, key = record.split("|", 2)
        if project == spec.name:
            promoted.add((key, int(step)))
    points = np.unique(np.fromiter(waiting, dtype=np.int64))
    first = [p for p in points.tolist() if p < plan.space.size or FIDELITY not in added.get(p, {FIDELITY: 1})]
    return LadderView(
        spec=spec,
        repeats=plan.config.repeats,
        observations=[o for o in seen if o.get("project") == spec.name],
        busy=busy,
        promoted=promoted,
        remaining=_remaining(state, sweep_id, unpaid),
        waiting=point_columns(plan.space, np.asarray(first, dtype=np.int64), added) if first else {},
    )


def _parameters(
    plan: SweepPlan, points: np.ndarray, added: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each point's parameters: the lazy product's, or an added point's (with its ``fidelity``)."""
    if not len(points):
        return []
    columns = point_columns(plan.space, points, added)
    out = []
    for row, point in enumerate(points.tolist()):
        params = {name: _plain(values[row]) for name, values in columns.items()}
        if FIDELITY in added.get(point, {}):
            params[FIDELITY] = added[point][FIDELITY]
        out.append(params)
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _remaining(state: SweepState, sweep_id: str, unpaid: float) -> float | None:
    """USD the sweep's and the global budget both still cover, less ``unpaid`` waiting work."""
    status = state.budget_ledger().status(sweep_id)
    room = [
        limit - spent - reserved
        for limit, spent, reserved in (
            (status.limit, status.spent, status.reserved),
            (status.global_limit, status.global_spent, status.global_reserved),
        )
        if limit is not None
    ]
    return min(room) - unpaid if room else None


def _message(spec: ProjectSpec, chosen: list[Promotion], view: LadderView) -> str:
    shown = "; ".join(
        f"{p.parameters} to rung {p.rung} ({spec.fidelities[p.rung].device}, ${p.cost:.4g}): {p.reason}"
        for p in chosen[:5]
    )
    more = f"; and {len(chosen) - 5} more" if len(chosen) > 5 else ""
    budget = "" if view.remaining is None else f"; budget left before these ${view.remaining:.4g}"
    return f"ladder {spec.name}: promoted {len(chosen)} point(s): {shown}{more}{budget}"
