"""Early stopping as a worker applies it: the sweep's rule judged at each value a running project
reports, the curve of each completed run kept for the next ones to be judged by, and the
low-shot rung of shots as a budget, judged as each low-shot run lands.

The decisions are atomic round trips to :class:`~orchestrator.store.pruning.PruningStore`, which
also holds the share cap, so every worker judges against every worker's runs.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from adapters.contract import Progress
from core.config import SweepConfiguration
from core.models import Experiment, ExperimentResult, ExperimentStatus
from core.optimizer_config import EarlyStoppingConfig
from orchestrator.optimizer.early_stopping import (
    EarlyStoppingRule,
    finite_values,
    shot_noise_variance,
    stopping_rule,
)
from orchestrator.store import SweepState

log = logging.getLogger(__name__)

REPORT_SECONDS = 0.5  # a running curve is uploaded (for status and refits) at most this often


@dataclass(frozen=True)
class Pruning:
    """A sweep's early stopping, as the worker applies it at each report."""

    metric: str  # the first objective: the curve's values and the low-shot rung's
    sign: float  # 1 when lower is better
    options: EarlyStoppingConfig
    rule: EarlyStoppingRule | None  # None: reports are kept but never judged

    @classmethod
    def of(cls, config: SweepConfiguration) -> Pruning | None:
        """The sweep's early stopping; None if it has none (disabled, no objective). The rules
        need no model, so they work with ``adaptive_sampling: false`` too."""
        es = config.optimizer.early_stopping
        if not (es.enabled and config.objectives):
            return None
        first = config.objectives[0]
        return cls(first.metric, -1.0 if first.goal == "maximize" else 1.0, es, stopping_rule(es))

    def progress(self, state: SweepState, sweep_id: str, experiment_id: str) -> Progress:
        """The ``report`` a project gets: each value is judged at once by the sweep's rule against
        every worker's curves (one atomic round trip to the store, which also holds the share
        cap), so a run stops at the report where the rule fires. The curve itself is
        uploaded (for ``status`` and the refit, which may ask a run to stop too) at most every
        ``REPORT_SECONDS``."""
        rule = self.rule
        if rule is None:
            return Progress()
        store, last = state.pruning(), [-math.inf]

        def should_stop(curve: list[float]) -> bool:
            now = time.monotonic()
            if now - last[0] >= REPORT_SECONDS:
                last[0] = now
                if state.report_curve(sweep_id, experiment_id, curve):  # the refit asked (it held the cap)
                    store.try_stop(sweep_id, experiment_id, 1.0, rule="refit", step=len(finite_values(curve)))
                    return True
            query = rule.at_report(curve, sign=self.sign)
            if query is None:
                return False
            verdict = store.judge(
                sweep_id, experiment_id, query, max_share=self.options.max_stopped_share, rule=rule.name
            )
            return verdict == 1

        return Progress(self.metric, should_stop, rule=rule.name)

    def finished(
        self, state: SweepState, sweep_id: str, experiment_id: str, result: ExperimentResult
    ) -> None:
        """A run ended: its curve is no longer a partial, and a completed one's curve is what the
        next runs are judged by."""
        curve = result.extra.get("intermediate")
        if not curve or self.rule is None:
            return
        state.forget_curve(sweep_id, experiment_id)
        if result.status == ExperimentStatus.COMPLETED:
            entries = self.rule.completed_entries(curve, sign=self.sign)
            state.pruning().add_completed(sweep_id, experiment_id, entries, len(finite_values(curve)))

    def low_shot_rung(
        self, state: SweepState, exp: Experiment, result: ExperimentResult, row: dict[str, Any]
    ) -> None:
        """Shots as a budget: judge the low-shot run among its peers now, not at the next refit.

        Once the rung holds ``min_completed`` low-shot runs, the best ``1/reduction_factor`` of
        them go on to full shots and the rest stop (under the share cap); a run whose optimistic
        bound cannot beat the incumbent the refit published stops at once.
        """
        value = result.metrics.get(self.metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return  # the refit decides (it needs a model for what the rung cannot compare)
        es, signed = self.options, self.sign * float(value)
        variance = shot_noise_variance(result.metrics, result.extra, self.metric)
        optimistic = None if variance is None else signed - es.promotion_beta * math.sqrt(variance)
        store = state.pruning()
        shots, fraction = result.extra.get("shots"), exp.shot_fraction or 1.0
        saved = shots / fraction - shots if isinstance(shots, (int, float)) and fraction > 0 else 0.0
        store.keep_low_shot_row(exp.sweep_id, exp.index, row, saved)
        promoted, stopped = store.low_shot_rung(
            exp.sweep_id,
            exp.resource,
            exp.index,
            value=signed,
            optimistic=optimistic,
            min_count=es.min_completed,
            eta=es.reduction_factor,
            max_share=es.max_stopped_share,
        )
        for index in stopped:
            _stop_low_shot(state, exp.sweep_id, index, es.reduction_factor)
        if promoted or stopped:
            log.info("sweep %s: low-shot rung promoted %s, stopped %s", exp.sweep_id, promoted, stopped)


def _stop_low_shot(state: SweepState, sweep_id: str, index: int, eta: int) -> None:
    """Write the stopped row of a low-shot run the rung stopped (it keeps its low-shot metrics)."""
    row = state.pruning().low_shot_row(sweep_id, index)
    if row is None:
        return
    share = json.loads(row.get("extra") or "{}").get("shot_fraction", 0)
    row = {
        **row,
        "status": ExperimentStatus.EARLY_STOPPED.value,
        "error_message": f"stopped at {share:.0%} of its shots (not in the best 1/{eta} of its rung)",
    }
    state.record(sweep_id, index, row["experiment_id"], row, status="early_stopped", final=True)
    state.optimizer().set_stage(sweep_id, index, "stopped")
