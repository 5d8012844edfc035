"""The coordinator's fill step: a sweep's plan, materialised chunk by chunk into its pending sets.

Each chunk is the next run of valid points of the lazy space; an experiment that already has a
successful result (anywhere in the dataset or in Redis) is never run again: its row is copied
into this sweep and it counts as done. The first chunk is small, so that the first experiments
go out at once even for huge sweeps.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from core.expectations import verdict
from core.plan import SweepPlan, priority
from core.protocol import ACTIVE_STATES
from core.results import ResultStore
from orchestrator.optimizer.missing_metrics import ReportedMetrics
from orchestrator.store import SweepState

FILL_CHUNK = 50_000
FIRST_FILL_CHUNK = 4_096


class Filler:
    """Fills one sweep's pending sets from its plan.

    Args:
        sweep_id: the sweep.
        plan: its experiments by index.
        state: the sweep state in Redis (its pending sets and the optimizer's observations).
        store: the Parquet dataset (successful experiments, and the rows reused from them).
        reported: told of the reused rows (their metric names), beside the rows that run.
    """

    def __init__(
        self,
        sweep_id: str,
        plan: SweepPlan,
        state: SweepState,
        store: ResultStore,
        reported: ReportedMetrics | None = None,
    ) -> None:
        self.sweep_id, self.plan, self.state, self.store = sweep_id, plan, state, store
        self.reported = reported
        self._done: dict[str, str] | None = None  # experiment_id -> sweep it was stored in

    def fill(self, meta: dict[str, Any]) -> bool:
        """Materialise the next chunk of valid experiments into the pending sets (reusing done
        ones), given the step's snapshot ``meta``; False if there is nothing to fill."""
        if meta.get("fill_done") == "1" or meta.get("state") not in ACTIVE_STATES:
            return False
        plan = self.plan
        cursor = int(meta.get("fill_cursor", 0))
        end = min(cursor + (FILL_CHUNK if cursor else FIRST_FILL_CHUNK), plan.space.size)
        points = next(plan.space.iter_valid(cursor, chunk=end - cursor), np.empty(0, dtype=np.int64))
        indices, reused = self._without_done(plan.experiment_indices(points))
        if reused:
            self._reuse(reused, batch=f"reused-{cursor}")
        scores = priority(indices, plan.config.adaptive_sampling, plan.config.seed)
        project_queue = [plan.projects[name].resource for name in plan.project_order]
        by_queue: dict[str, dict[str, float]] = {}
        for index, score in zip(indices.tolist(), scores.tolist(), strict=True):
            by_queue.setdefault(project_queue[index % len(project_queue)], {})[str(index)] = score
        self.state.pending.add(self.sweep_id, by_queue, list(reused.values()), end, end >= plan.space.size)
        return True

    def _without_done(self, indices: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
        """Split off the experiments that already have a successful result: ``(to run, reused)``,
        reused as experiment id -> its index in this sweep."""
        if self._done is None:
            # Successful experiments anywhere in the dataset or in Redis are never run again.
            self._done = self.store.successful()
            for exp_id in self.state.done_ids():
                self._done.setdefault(exp_id, "")
        reused: dict[str, int] = {}
        if not (self._done and len(indices)):
            return indices, reused
        keep = []
        for index, exp_id in self.plan.experiment_ids(indices):
            if exp_id in self._done:
                reused[exp_id] = index
            else:
                keep.append(index)
        return np.asarray(keep, dtype=np.int64), reused

    def _reuse(self, reused: dict[str, int], batch: str) -> None:
        """Give reused results to this sweep: its Parquet rows (copied from another sweep) and the optimizer."""
        rows = self.store.rows_for(set(reused))
        for row in rows:
            row["index"] = reused[row["experiment_id"]]
        elsewhere = [r for r in rows if r["sweep_id"] != self.sweep_id]
        expectations = self.plan.config.validation
        for row in elsewhere:
            # Paid for by the sweep it ran in: here it costs nothing, and says where it came from.
            extra = _extra(row)
            extra.update(reused_from=row["sweep_id"], original_cost=row.get("cost"))
            row.update(sweep_id=self.sweep_id, cost=0.0, extra=json.dumps(extra, sort_keys=True, default=str))
            # checked against this sweep's validation section, not the one it ran under
            row["validation"] = verdict(json.loads(row.get("metrics") or "{}"), _extra(row), expectations)
        if elsewhere:  # completed in another sweep: copied, so this sweep's results are whole
            self.store.write_rows(self.sweep_id, elsewhere, batch=batch)
        self.state.optimizer().observe(self.sweep_id, rows)
        if self.reported is not None:
            self.reported.see(rows)
        self.state.event(self.sweep_id, "info", f"reused {len(reused)} completed experiment(s)")


def _extra(row: dict[str, Any]) -> dict[str, Any]:
    extra = row.get("extra")
    return json.loads(extra) if isinstance(extra, str) and extra else {}
