"""The coordinator's fill step: a sweep's plan, materialised a few thousand experiments at a time.

A sweep's pending sets hold only what runs next: when they fall below ``LOW_WATER`` the next
chunk of positions past the fill cursor (:class:`core.order.WalkOrder`) is materialised, in one
script with the cursor's move, so Redis holds the same few thousand pending experiments for a
thousand points or a hundred million. The optimizer's picks from its candidate pool (points
ahead of the cursor) are materialised the same way, first. An experiment that already has a
successful result (anywhere in the dataset or in Redis) is never run again: its row is copied
into this sweep and it counts as done.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from core.expectations import verdict
from core.order import WalkOrder, walk_order
from core.plan import SweepPlan, queue_of
from core.protocol import ACTIVE_STATES
from core.results import ResultStore
from orchestrator.optimizer.missing_metrics import ReportedMetrics
from orchestrator.reuse import DoneIndex
from orchestrator.store import SweepState

#: the pending sets are topped up from the cursor while they hold fewer experiments than this
LOW_WATER = 4_096
#: experiments per chunk the cursor materialises (its points times their repeats and projects)
CHUNK = 4_096
#: a step fills for at most this long (chunks whose points are all reused or invalid add nothing)
FILL_SECONDS = 0.25
#: ... and a sweep's first step fills only this many, so that its first experiments go out at once
#: (materialising a whole chunk took 20 ms, a third of the time from submit to the first run)
FIRST_CHUNK = 256

#: what :meth:`PendingSets.materialize` takes per experiment: (kind, queue, point, index, score)
Entry = tuple[str, str, int, int, float | None]


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
        self.order = walk_order(plan)
        self._done: DoneIndex | None = None  # the dataset's completed experiments
        self._stored_in: dict[str, str] = {}  # reused experiment id -> the sweep its row is in
        # only points of the lazy product are materialised here: on a fidelity ladder, its first rung
        project_queue = [queue_of(plan.projects[name], {}) for name in plan.project_order]
        self._queue_of = lambda index: project_queue[index % len(project_queue)]

    def fill(self, meta: dict[str, Any]) -> bool:
        """Materialise the optimizer's picks, then top the pending sets up from the cursor, given
        the step's snapshot ``meta`` (updated in place); False if nothing was materialised."""
        if meta.get("state") not in ACTIVE_STATES:
            return False
        moved = bool(meta.get("n_picks")) and self._picks(meta)
        size, stride = self.plan.space.size, self.plan.stride
        pending = sum((meta.get("pending") or {}).values())
        first = not pending and not int(meta.get("fill_cursor", 0))
        started = time.monotonic()
        while (
            meta.get("fill_done") != "1" and pending < LOW_WATER and time.monotonic() - started < FILL_SECONDS
        ):
            cursor = int(meta.get("fill_cursor", 0))
            end = min(cursor + max(1, (FIRST_CHUNK if first else CHUNK) // stride), size)
            points = self.order.points(cursor, end)
            points = points[self.plan.space.valid_mask(points)]
            entries = self._entries("c", points, cursor, self._walk_scores(points))
            excluded = (end - cursor - len(points)) * stride
            added = self.state.pending.materialize(self.sweep_id, cursor, end, end >= size, entries, excluded)
            if added is None:  # another fill came first (a coordinator that lost the lock)
                return moved
            pending += added
            meta["fill_cursor"], moved = end, True
            if end >= size:
                meta["fill_done"] = "1"
            if first and pending:
                break  # the rest on the next steps, while these run
        return moved

    def excluded_ahead(self, meta: dict[str, Any]) -> int:
        """Experiments past the cursor that constraints exclude (still in ``total``): a cancelled
        sweep counts the rest as never started. This checks every point left, once, at the end."""
        if not self.plan.space.constraints:
            return 0
        cursor = int(meta.get("fill_cursor", 0))
        valid = sum(len(p) for p in _valid_chunks(self.plan, self.order, cursor))
        return (self.plan.space.size - cursor - valid) * self.plan.stride

    def _picks(self, meta: dict[str, Any]) -> bool:
        """Materialise the optimizer's picks (points ahead of the cursor), or re-score them where
        the cursor or an earlier pick materialised them already."""
        picks = self.state.pending.take_picks(self.sweep_id)
        if not picks:
            return False
        cursor = int(meta.get("fill_cursor", 0))
        points = np.fromiter(picks, dtype=np.int64)
        points = points[(points < self.plan.space.size) & self.plan.space.valid_mask(points)]
        behind = (self.order.positions(points) < cursor) | self.state.pending.picked(self.sweep_id, points)
        entries = self._entries("s", points[behind], cursor, picks, reuse=False)
        entries += self._entries("p", points[~behind], cursor, picks)
        done = meta.get("fill_done") == "1"
        return self.state.pending.materialize(self.sweep_id, cursor, cursor, done, entries) is not None

    def _walk_scores(self, points: np.ndarray) -> dict[int, float]:
        """Scores of points the cursor materialises: index order, or for adaptive sweeps their
        place in the walk, below every score a refit gives (those are in (0, 1])."""
        if not self.plan.config.adaptive_sampling:
            return {}  # by experiment index, in _entries
        places = self.order.positions(points) / max(self.plan.space.size, 1)
        return dict(zip(points.tolist(), (-1.0 - places).tolist(), strict=True))

    def _entries(
        self, kind: str, points: np.ndarray, cursor: int, scores: dict[int, float], reuse: bool = True
    ) -> list[Entry]:
        """The experiments of ``points`` for :meth:`PendingSets.materialize`, scored by point
        (by ``-index`` where ``scores`` is empty); with ``reuse``, those with a successful
        result are copied into this sweep and entered as reused."""
        stride = self.plan.stride
        indices = self.plan.experiment_indices(points)
        reused: dict[str, int] = {}
        if reuse:
            indices, reused = self._without_done(indices)
            if reused:
                self._reuse(reused, batch=f"reused-{kind}{cursor}-{min(reused.values())}")
        entries: list[Entry] = [
            (kind, self._queue_of(i), i // stride, i, scores[i // stride] if scores else -float(i))
            for i in indices.tolist()
        ]
        entries += [(kind, self._queue_of(i), i // stride, i, None) for i in reused.values()]
        return entries

    def _without_done(self, indices: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
        """Split off the experiments that already have a successful result: ``(to run, reused)``,
        reused as experiment id -> its index in this sweep."""
        if self._done is None:
            self._done = DoneIndex(self.store)  # the dataset's, read once; Redis's per chunk
        reused: dict[str, int] = {}
        if not len(indices) or not (len(self._done) or self.state.any_done()):
            return indices, reused  # nothing completed anywhere: no id need be computed
        pairs = list(self.plan.experiment_ids(indices))
        ids = [exp_id for _, exp_id in pairs]
        stored = self._done.sweeps_of(ids)
        on_broker = self.state.done_among(ids)
        keep = []
        for (index, exp_id), sweep, done in zip(pairs, stored, on_broker, strict=True):
            if sweep is not None or done:
                reused[exp_id] = index
                self._stored_in[exp_id] = sweep or ""
            else:
                keep.append(index)
        return np.asarray(keep, dtype=np.int64), reused

    def _reuse(self, reused: dict[str, int], batch: str) -> None:
        """Give reused results to this sweep: its Parquet rows (copied from another sweep) and the optimizer."""
        stored = [self._stored_in.pop(e, "") for e in reused]
        if not self.plan.config.adaptive_sampling and all(s == self.sweep_id for s in stored):
            return  # its own rows, already in place, and no model to tell: a rerun reads nothing
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


def _valid_chunks(plan: SweepPlan, order: WalkOrder, start: int) -> Any:
    for lo in range(start, plan.space.size, 1 << 16):
        points = order.points(lo, lo + (1 << 16))
        yield points[plan.space.valid_mask(points)]


def _extra(row: dict[str, Any]) -> dict[str, Any]:
    extra = row.get("extra")
    return json.loads(extra) if isinstance(extra, str) and extra else {}
