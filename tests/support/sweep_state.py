"""A sweep registered and filled in a real Redis, nothing published: the state the optimizer's
refit starts from, before a test records the results it needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import validate_sweep
from core.plan import SweepPlan
from core.results import ResultStore
from core.settings import load_settings
from orchestrator.coordinator import Coordinator
from orchestrator.dispatch import Dispatcher
from orchestrator.scheduler import Scheduler
from orchestrator.store import SweepState, connect
from workers.app import create_app


@dataclass
class FilledSweep:
    state: SweepState
    sid: str
    plan: SweepPlan
    coordinator: Coordinator  # the one that filled it: it holds the sweep's lock


def filled_sweep(redis_url: str, results_dir: Path, sweep: dict[str, Any]) -> FilledSweep:
    """``sweep`` registered and its pending sets filled, left paused: the caller records results
    (nothing has run) and sets it running."""
    settings = load_settings(broker_url=redis_url, results_dir=results_dir, publish_window=1)
    state = SweepState(connect(redis_url))
    config = validate_sweep(sweep)
    sid = Scheduler(state, ResultStore(settings.results_dir), settings).schedule_sweep(config).execution_id
    coordinator = Coordinator(
        state,
        ResultStore(settings.results_dir),
        Dispatcher(create_app(settings)),
        settings,
        optimize_inline=False,
    )
    state.set_state(sid, "paused")  # fill, publish nothing
    for _ in range(5):
        coordinator.step(block_ms=1)
    return FilledSweep(state, sid, SweepPlan.of(config, state.meta(sid)), coordinator)
