"""An objective or a metric constraint that no result reports is a configuration alert, in every
kind of sweep.

Metric names are learned from real results: ``submit`` runs no project code, and a project that
declares no ``metrics`` is known only by what it returns. Once every project of the sweep has
completed a run, an objective or metric constraint naming a metric none of the results reports
pauses the sweep with an alert naming the field to fix and the metrics the results do report
(``run`` then exits 1): a grid sweep would otherwise end with no "best" and no feasibility, and
an adaptive one would steer by nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from core.config import SweepConfiguration
from core.expressions import Expression
from core.protocol import Lifecycle
from orchestrator.store import SweepState

#: statuses whose metrics are what the project reports (a partial row is a low-shot completed run)
_REPORTING = ("completed", "partial")


class ReportedMetrics:
    """The metric names a sweep's completed results report, seen row by row, and the verdict
    once every project has completed a run.

    Args:
        config: the sweep (its projects, objectives and metric constraints).
    """

    def __init__(self, config: SweepConfiguration) -> None:
        self.config = config
        self.reported: set[str] = set()
        self.waiting = {p.name for p in config.projects}  # projects with no completed run yet
        self.settled = not (config.objectives or config.constraints.metrics)

    def see(self, rows: Iterable[dict[str, Any]]) -> None:
        """Note result rows (Parquet rows or the optimizer's observations)."""
        if self.settled:
            return
        for row in rows:
            if row.get("status") not in _REPORTING:
                continue
            metrics = row.get("metrics") or {}
            self.reported |= set(json.loads(metrics) if isinstance(metrics, str) else metrics)
            self.waiting.discard(row.get("project_name") or row.get("project") or "")

    def problem(self) -> str | None:
        """The alert, once every project has completed a run and a named metric is in none of
        their results; None before that, when all is well, and after it was given once."""
        if self.settled or self.waiting:
            return None
        self.settled = True
        return missing_metric_alert(self.config, self.reported)


def missing_metric_alert(config: SweepConfiguration, reported: set[str]) -> str | None:
    """The alert for the first objective or metric constraint naming a metric not in ``reported``."""
    names = ", ".join(sorted(reported)) or "none"
    for i, objective in enumerate(config.objectives):
        if objective.metric not in reported:
            metric, what, field = (
                objective.metric,
                f"objective '{objective.metric}'",
                f"objectives[{i}].metric",
            )
            break
    else:
        for i, text in enumerate(config.constraints.metrics):
            unknown = sorted(Expression(text).names - reported - set(config.parameters))
            if unknown:
                metric, what, field = unknown[0], f"metric constraint '{text}'", f"constraints.metrics[{i}]"
                break
        else:
            return None
    subject = what if what.startswith("objective") else f"{what} names '{metric}', which"
    return (
        f"configuration: {subject} is in no result (the results report: {names}); fix: set {field} "
        f"in the sweep file to a reported metric, or make the project return '{metric}', then run "
        "the sweep file again (completed experiments are reused)"
    )


def pause_on_alert(state: SweepState, sweep_id: str, reason: str) -> bool:
    """Pause a running sweep with ``reason`` as a configuration alert; True if it was running.

    The alert is logged first: whoever sees the sweep paused finds the alert that paused it.
    """
    if state.state(sweep_id) != Lifecycle.RUNNING:
        return False
    state.event(sweep_id, "alert", reason)
    return state.transition(
        sweep_id, Lifecycle.PAUSED, allowed=frozenset({Lifecycle.RUNNING}), paused_reason=reason
    )
