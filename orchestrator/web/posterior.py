"""The live posterior: the optimizer's belief over two parameters, with the next picks.

``GET /api/v1/sweeps/{id}/posterior?x=gamma&y=beta&size=30`` answers the GP's mean and standard
deviation on a grid (see :func:`~orchestrator.optimizer.belief.posterior_grid`), the results so
far, and the experiments the optimizer will run next (the head of the pending order). The model
only changes at a refit, so one grid is computed per refit and parameter pair and kept for every
client; a dashboard asks again when the events stream says ``refit``.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from core.config import SweepConfiguration
from core.plan import SweepPlan

if TYPE_CHECKING:
    from orchestrator.api import Orchestrator

NEXT_PICKS = 8
KEPT = 64  # grids kept (a few pairs of a few live sweeps)
_grids: dict[tuple[Any, ...], dict[str, Any]] = {}
_locks: dict[str, threading.Lock] = {}  # per sweep: one sweep's refit does not wait for another's


def posterior_view(
    orch: Orchestrator, sweep_id: str, x: str | None, y: str | None, size: int
) -> dict[str, Any]:
    """The grid for the sweep's last refit (``ready`` False, with the reason, until there is one)."""
    from orchestrator.optimizer.belief import numeric_parameters, posterior_grid
    from orchestrator.optimizer.recommendation import OptimizationRecommendation

    meta = orch.state.meta(sweep_id)
    config = SweepConfiguration.model_validate_json(meta["config"])
    names = numeric_parameters(config)
    x = x or (names[0] if names else None)
    y = y or next((n for n in names if n != x), None)
    refit = json.loads(meta["optimizer"]) if meta.get("optimizer") else {}
    view: dict[str, Any] = {
        "ready": False,
        "parameters": names,
        "refit_at": refit.get("created_at"),
        "phase": refit.get("phase"),
    }
    if not config.adaptive_sampling or config.optimizer.sampler != "gp" or not config.objectives:
        reason = "this sweep has no model: it is not adaptive with a GP and an objective"
        return {**view, "reason": reason, "has_model": False}
    if x is None or y is None:
        return {**view, "reason": "the posterior view needs two numeric parameters that the sweep varies"}
    if refit.get("phase") != "model":
        return {**view, "reason": "no model yet: the optimizer is still running its startup design"}
    key = (sweep_id, refit.get("created_at"), x, y, size)
    with _locks.setdefault(sweep_id, threading.Lock()):  # one computation per refit and pair
        grid = _grids.get(key)
        if grid is None:
            store = orch.state.optimizer()
            seen = store.observations(sweep_id, violations=config.optimizer.fit_violations)
            previous = OptimizationRecommendation.from_dict(refit)
            flight = len(store.in_flight(sweep_id))
            grid = posterior_grid(config, seen, previous, x, y, size=size, in_flight=flight) or {}
            if len(_grids) >= KEPT:
                _grids.pop(next(iter(_grids)))
            _grids[key] = grid
    if not grid:
        return {**view, "reason": "no model yet: too few usable results"}
    return {**view, **grid, "ready": True, "next": next_picks(orch, sweep_id, config, meta)}


def next_picks(
    orch: Orchestrator, sweep_id: str, config: SweepConfiguration, meta: dict[str, Any]
) -> list[dict[str, Any]]:
    """The parameters of the experiments the optimizer ranks first among those pending."""
    store = orch.state.optimizer()
    top = store.top_pending(sweep_id, NEXT_PICKS)
    if not top:
        return []
    plan = SweepPlan.of(config, meta)
    if max(top) >= plan.space.size * plan.stride:  # optimizer-added (refinement) points
        plan.added = store.added(sweep_id)
    return [dict(e.parameters) for e in plan.experiments(top)]
