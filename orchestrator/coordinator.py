"""The coordinator: fills pending sets, publishes a bounded window, writes results to Parquet.

One coordinator serves each sweep at a time (a Redis lock with a TTL, so a killed coordinator's
sweep is picked up by the next one). Its loop, per sweep:

1. *fill*: materialise the next chunk of valid experiments into the pending sorted sets
   (reusing any experiment that already has a successful result);
2. *publish*: top each queue up to its window, best score first (see :mod:`orchestrator.pacing`);
3. *drain*: move result rows from the sweep's Redis stream into Parquet, acking only after the
   file is in place;
4. *finish*: deadline, cancellation and completion.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.config import SweepConfiguration
from core.expectations import verdict
from core.plan import SweepPlan, priority
from core.project import is_managed
from core.protocol import ACTIVE_STATES, RESOURCE_QUEUES, Lifecycle, PollMessage, Task
from core.results import ResultStore
from core.settings import Settings
from orchestrator.dispatch import PUBLISH_ERRORS, Dispatcher
from orchestrator.pacing import Pacing
from orchestrator.store import STORE_ERRORS, SweepState

log = logging.getLogger(__name__)
#: what a broker outage raises, from Redis calls and from publishing
BROKER_ERRORS = (*STORE_ERRORS, *PUBLISH_ERRORS)

FILL_CHUNK = 50_000
FIRST_FILL_CHUNK = 4_096  # a small first chunk: the first experiments go out at once, even for huge sweeps
# While busy, a step starts at most every PACE_SECONDS: results then come in batches instead of
# one step (four round trips) per result; the window holds far more than that much work.
PACE_SECONDS = 0.01
REPORT_NICENESS = 19  # a completed sweep's report yields the CPU to experiments (see _write_report)
HOUSEKEEPING_SECONDS = 1.0  # heartbeat, lock refresh and consumer count, not on every step
LOCK_TTL = 15
# A sweep with no result for this long has its messages accounted for, and again as often; what
# two accounts in a row find missing is sent again (see _reconcile).
RECONCILE_SECONDS = 5.0
OUTAGE_BACKOFF_MAX = 2.0  # seconds between attempts while the broker is unreachable (a restart takes ~1.5 s)
# Meta fields a step reads (HMGET): never the whole hash, which holds the config and optimizer state.
_STEP_FIELDS = ("state", "fill_done", "fill_cursor", "total", "deadline", "final_state", "n_reused")


@dataclass
class _Sweep:
    sweep_id: str
    plan: SweepPlan
    done_ids: dict[str, str] | None = None  # experiment_id -> sweep it was stored in
    buffer: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    buffer_since: float = 0.0
    last_optimize: float = 0.0
    new_results: int = 0  # since the last refit
    last_result: float = field(default_factory=time.monotonic)
    refit: threading.Thread | None = None
    queues: tuple[str, ...] = ()  # the resource queues its projects use
    batched: frozenset[str] = frozenset()  # those that may batch (no managed quantum task on them)
    allowance: float = math.inf  # experiments it may publish before the next refit lands (see _gated)
    reconciled: float = field(default_factory=time.monotonic)
    # what the last reconcile found without a message: (queue, index) of experiments, poll ARNs
    missing_runs: frozenset[tuple[str, int]] = frozenset()
    missing_polls: frozenset[str] = frozenset()


class Coordinator:
    """Serves every active sweep it can lock. ``run_until`` drives it from a CLI or a thread.

    Args:
        window: the least number of experiments in flight per queue (default: 2 x its consumers);
            ``settings.publish_window``, when set, fixes the window instead.
    """

    def __init__(
        self,
        state: SweepState,
        store: ResultStore,
        dispatcher: Dispatcher,
        settings: Settings,
        *,
        window: int | None = None,
        optimize_inline: bool = True,
    ) -> None:
        self.state = state
        self.store = store
        self.dispatcher = dispatcher
        self.settings = settings
        self.pacing = Pacing(settings, window)
        self.optimize_inline = optimize_inline
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.sweeps: dict[str, _Sweep] = {}
        self.flush_seconds = 1.0
        #: called during a broker outage (the embedded mode restarts its Redis from its AOF)
        self.on_outage: Callable[[], None] | None = None
        self._outage_since: float | None = None
        self._failures = 0
        self._housekept = -math.inf
        #: report threads of completed sweeps (see ``_report``)
        self.reports: dict[str, threading.Thread] = {}
        #: draw reports in this process (``orchestrator run``, which exits once its one sweep is
        #: reported, so nothing waits on the CPU it takes); otherwise in a process of their own
        self.report_inline = False

    # -- loop -------------------------------------------------------------------------------------

    def run_until(
        self, done: Callable[[], bool], on_tick: Callable[[], None] | None = None, tick_seconds: float = 0.1
    ) -> None:
        """Step until ``done()``; a broker outage is waited out (see :meth:`_outage`), never fatal."""
        while True:
            try:
                return self._loop(done, on_tick, tick_seconds)
            except BROKER_ERRORS as exc:
                self._outage(exc)

    def _loop(
        self,
        done: Callable[[], bool],
        on_tick: Callable[[], None] | None,
        tick_seconds: float,
    ) -> None:
        last_report = last_check = 0.0
        while True:
            started = time.monotonic()
            busy = self.step(block_ms=int(tick_seconds * 1000))
            if self._outage_since is not None:
                log.warning("broker reachable again after %.1f s", time.monotonic() - self._outage_since)
                self._outage_since, self._failures = None, 0
            now = time.monotonic()
            if on_tick and now - last_report > 0.2:
                on_tick()
                last_report = now
            # ``done`` may be a status query: while busy, ask at most every 50 ms, not every step
            if not busy or now - last_check >= 0.05:
                last_check = now
                if done():
                    self.flush_all()
                    if on_tick:
                        on_tick()
                    return
            if not busy:
                time.sleep(0.005)
            elif now - started < PACE_SECONDS:
                time.sleep(PACE_SECONDS - (now - started))

    def _outage(self, exc: BaseException) -> None:
        """The broker is gone: forget the served sweeps and wait (exponential backoff, full jitter).

        Nothing is lost by forgetting: rows read but not yet in Parquet are still pending in the
        results stream, experiments marked queued go back to pending, and the lock is taken
        again, all when the sweep is loaded anew once Redis answers (see ``_load``).
        """
        if self._outage_since is None:  # once per outage, not once per attempt
            self._outage_since = time.monotonic()
            log.warning("broker unreachable (%s); retrying with backoff until it is back", exc)
        self._failures += 1
        self.sweeps.clear()
        self._housekept = -math.inf
        if self.on_outage is not None:
            try:
                self.on_outage()
            except Exception:  # noqa: BLE001 - the next attempt tries again
                log.exception("could not restore the broker")
        time.sleep(random.uniform(0, min(OUTAGE_BACKOFF_MAX, 0.2 * 2**self._failures)))

    def step(self, block_ms: int = 100) -> bool:
        """One pass over the served sweeps. Returns True if anything moved.

        The state a step needs (the sweeps to serve, their state and counters, the queued
        counts) comes in one round trip; heartbeat and lock refresh run once a second.
        """
        if time.monotonic() - self._housekept >= HOUSEKEEPING_SECONDS:
            self._housekeeping()
        members, snapshots = self._snapshot()
        for sweep_id in sorted(members - set(self.sweeps)):
            if self._lock(sweep_id):
                self._load(sweep_id)
                snapshots.update(self._snapshot()[1])
        for sweep_id in set(self.sweeps) - members:
            self.sweeps.pop(sweep_id)  # closed by another coordinator
        moved = False
        for sweep_id, sweep in list(self.sweeps.items()):
            meta = snapshots[sweep_id]
            moved |= self._fill(sweep, meta)
            if meta.get("state") == Lifecycle.RUNNING:
                moved |= self._publish(sweep, meta)
                self._maybe_optimize(sweep)
        moved |= self._drain(block_ms if not moved else 0)
        for sweep_id in list(self.sweeps):
            self._reconcile(self.sweeps[sweep_id])
            self._finish(self.sweeps[sweep_id], snapshots[sweep_id])
        return moved

    def _housekeeping(self) -> None:
        self._housekept = time.monotonic()
        self.state.registry.coordinator_beat(self.token)
        for sweep_id, sweep in list(self.sweeps.items()):
            if not self._lock(sweep_id):
                self.sweeps.pop(sweep_id)  # lost the lock: another coordinator took over
                continue
            if orphans := self.state.pending.requeue_orphans(sweep_id, sweep.plan.resource_of):
                self.state.event(
                    sweep_id, "info", f"{orphans} experiment(s) of a lost worker back to pending"
                )
        for host, tags in self.state.registry.lost(self.settings.worker_lost_after).items():
            if restored := self.dispatcher.restore(tags):
                log.warning("worker %s is lost: %d message(s) it held are requeued", host, restored.total())
                for sweep_id, n in restored.items():
                    if sweep_id:
                        self.state.event(
                            sweep_id, "info", f"{n} message(s) held by lost worker {host} requeued"
                        )
            self.state.registry.forget(host)
        self.pacing.consumers = self.state.registry.consumers(RESOURCE_QUEUES)

    def _snapshot(self) -> tuple[set[str], dict[str, dict[str, Any]]]:
        """The sweeps to serve, and per served sweep its step fields, queued and terminal counts."""
        return self.state.snapshot([(s.sweep_id, s.queues) for s in self.sweeps.values()], _STEP_FIELDS)

    def flush_all(self) -> None:
        for sweep in self.sweeps.values():
            self._write(sweep, force=True)

    def release(self) -> None:
        self.flush_all()
        self.state.registry.forget_coordinator(self.token, list(self.sweeps))
        self.wait_reports()

    def wait_reports(self, sweep_id: str | None = None, timeout: float | None = None) -> None:
        """Wait for the reports being written (of ``sweep_id``, or all), so none is lost on exit."""
        for sid, thread in list(self.reports.items()):
            if sweep_id in (None, sid):
                thread.join(timeout)
                if not thread.is_alive():
                    self.reports.pop(sid, None)

    # -- per sweep --------------------------------------------------------------------------------

    def _lock(self, sweep_id: str) -> bool:
        return self.state.registry.lock_sweep(sweep_id, self.token, LOCK_TTL)

    def _load(self, sweep_id: str) -> _Sweep:
        meta = self.state.meta(sweep_id)
        config = SweepConfiguration.model_validate_json(meta["config"])
        plan = SweepPlan(config, json.loads(meta["code_versions"]))
        queues = tuple(q for q in RESOURCE_QUEUES if q in {p.resource for p in plan.projects.values()})
        managed = {p.resource for p in plan.projects.values() if is_managed(p.device)}
        sweep = _Sweep(sweep_id, plan, queues=queues, batched=frozenset(queues) - managed)
        if self._gated(sweep):
            sweep.allowance = 0  # the first publish waits for the first refit: the startup design
        self.state.pending.requeue_queued(sweep_id)
        # Entries a previous coordinator read but never wrote to Parquet (it died): take them first.
        self.sweeps[sweep_id] = sweep
        self._take({sweep_id: self.state.results.open(sweep_id)})
        return sweep

    def _fill(self, sweep: _Sweep, meta: dict[str, Any]) -> bool:
        """Materialise the next chunk of valid experiments into the pending sets (reusing done ones)."""
        if meta.get("fill_done") == "1" or meta.get("state") not in ACTIVE_STATES:
            return False
        plan = sweep.plan
        cursor = int(meta.get("fill_cursor", 0))
        end = min(cursor + (FILL_CHUNK if cursor else FIRST_FILL_CHUNK), plan.space.size)
        points = next(plan.space.iter_valid(cursor, chunk=end - cursor), np.empty(0, dtype=np.int64))
        indices, reused = self._without_done(sweep, plan.experiment_indices(points))
        if reused:
            self._reuse(sweep, reused, batch=f"reused-{cursor}")
        scores = priority(indices, plan.config.adaptive_sampling, plan.config.seed)
        project_queue = [plan.projects[name].resource for name in plan.project_order]
        by_queue: dict[str, dict[str, float]] = {}
        for index, score in zip(indices.tolist(), scores.tolist(), strict=True):
            by_queue.setdefault(project_queue[index % len(project_queue)], {})[str(index)] = score
        self.state.pending.add(sweep.sweep_id, by_queue, list(reused.values()), end, end >= plan.space.size)
        return True

    def _without_done(self, sweep: _Sweep, indices: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
        """Split off the experiments that already have a successful result: ``(to run, reused)``,
        reused as experiment id -> its index in this sweep."""
        if sweep.done_ids is None:
            # Successful experiments anywhere in the dataset or in Redis are never run again.
            sweep.done_ids = self.store.successful()
            for exp_id in self.state.done_ids():
                sweep.done_ids.setdefault(exp_id, "")
        reused: dict[str, int] = {}
        if not (sweep.done_ids and len(indices)):
            return indices, reused
        keep = []
        for index, exp_id in sweep.plan.experiment_ids(indices):
            if exp_id in sweep.done_ids:
                reused[exp_id] = index
            else:
                keep.append(index)
        return np.asarray(keep, dtype=np.int64), reused

    def _reuse(self, sweep: _Sweep, reused: dict[str, int], batch: str) -> None:
        """Give reused results to this sweep: its Parquet rows (copied from another sweep) and the optimizer."""
        rows = self.store.rows_for(set(reused))
        for row in rows:
            row["index"] = reused[row["experiment_id"]]
        elsewhere = [r for r in rows if r["sweep_id"] != sweep.sweep_id]
        expectations = sweep.plan.config.validation
        for row in elsewhere:
            # Paid for by the sweep it ran in: here it costs nothing, and says where it came from.
            extra = json.loads(row["extra"]) if isinstance(row.get("extra"), str) and row["extra"] else {}
            extra.update(reused_from=row["sweep_id"], original_cost=row.get("cost"))
            row.update(
                sweep_id=sweep.sweep_id, cost=0.0, extra=json.dumps(extra, sort_keys=True, default=str)
            )
            # checked against this sweep's validation section, not the one it ran under
            row["validation"] = verdict(json.loads(row.get("metrics") or "{}"), _extra(row), expectations)
        if elsewhere:  # completed in another sweep: copied, so this sweep's results are whole
            self.store.write_rows(sweep.sweep_id, elsewhere, batch=batch)
        self.state.optimizer().observe(sweep.sweep_id, rows)
        self.state.event(sweep.sweep_id, "info", f"reused {len(reused)} completed experiment(s)")

    def _sharing(self, queue: str) -> int:
        return sum(queue in s.queues for s in self.sweeps.values())

    def _publish(self, sweep: _Sweep, meta: dict[str, Any]) -> bool:
        st, plan = self.state, sweep.plan
        sent, room = False, min(self._room(sweep, meta), sweep.allowance)
        left = (
            int(meta.get("total", 0)) - meta["n_terminal"] - meta["n_running"] - sum(meta["queued"].values())
        )
        for queue in sweep.queues:
            sharing, batched = self._sharing(queue), queue in sweep.batched
            window = self.pacing.window(queue, sharing, by_work=batched, sweep=sweep.sweep_id)
            batch = self.pacing.batch(queue, sharing, sweep.sweep_id, window) if batched else 1
            # Near the end, smaller messages: the last whole batch would keep one consumer busy
            # while the others sit idle (a tenth of the run time on 1,000 10-ms experiments).
            consumers = max(1, self.pacing.consumers.get(queue, 0))
            batch = max(1, min(batch, math.ceil(left / (2 * consumers))))
            space = window - meta["queued"][queue]
            if space < batch <= room:
                # Wait for a whole message's worth: topping up the window as each result lands
                # sends messages of one or two short experiments, each paying the per-message
                # cost that batching removes. The window holds two batches per consumer, so
                # the consumers never starve meanwhile.
                continue
            # whole batches only (a remainder would travel alone), unless the cap leaves less
            free = min(room, space if room < batch else space - space % batch)
            if free <= 0:
                continue
            # Marked queued *before* sending: a fast worker can start an experiment (and take it
            # out of "queued") before the broker has even answered us, and marking it afterwards
            # would leave a stale entry that holds a window slot forever. A crash between the
            # mark and the send is repaired when a coordinator loads the sweep (``PendingSets.requeue_queued``).
            top = st.pending.take(sweep.sweep_id, queue, free)
            if not top:
                continue
            members = [m for m, _ in top]
            meta["queued"][queue] += len(members)
            room -= len(members)
            sweep.allowance -= len(members)
            try:
                if max(int(m) for m in members) >= plan.space.size * plan.stride:  # optimizer-added points
                    plan.added = st.optimizer().added(sweep.sweep_id)
                self.dispatcher.publish(self._staged(sweep, plan.experiments(members)), batch)
            except BaseException:
                st.pending.untake(sweep.sweep_id, queue, top)
                raise
            sent = True
        return sent

    @staticmethod
    def _room(sweep: _Sweep, meta: dict[str, Any]) -> int | float:
        """Experiments that may still start under ``max_experiments`` (reused ones do not count)."""
        cap = sweep.plan.config.max_experiments
        if cap is None:
            return math.inf
        started = (
            meta["n_terminal"]
            - int(meta.get("n_reused", 0))
            + meta["n_running"]
            + sum(meta["queued"].values())
        )
        return cap - started

    def _staged(self, sweep: _Sweep, experiments: list[Any]) -> list[Any]:
        """Experiments not yet promoted run first at low shots, when the sweep asks for it."""
        if not sweep.plan.config.optimizer.early_stopping.low_fidelity_share or not experiments:
            return experiments
        stages = self.state.optimizer().stages(sweep.sweep_id, [e.index for e in experiments])
        return [
            (sweep.plan.low_fidelity(exp) if stage is None else None) or exp
            for exp, stage in zip(experiments, stages, strict=True)
        ]

    def _gated(self, sweep: _Sweep) -> bool:
        """A sweep with a run budget waits for the model: each refit lets out one experiment per
        consumer, so the optimizer (not a stale order) picks every one of its ``max_experiments``."""
        config = sweep.plan.config
        return bool(
            self.optimize_inline
            and config.adaptive_sampling
            and config.objectives
            and config.max_experiments is not None
        )

    def _maybe_optimize(self, sweep: _Sweep) -> None:
        if not (self.optimize_inline and sweep.plan.config.adaptive_sampling):
            return
        if sweep.refit is not None and sweep.refit.is_alive():
            return
        now = time.monotonic()
        # every optimizer_interval, sooner once a batch's worth of new results is in, and at once
        # when a gated sweep has used its allowance and has news
        enough = sweep.new_results >= sweep.plan.config.optimizer.batch_size
        interval = self.settings.optimizer_interval
        waiting = sweep.allowance <= 0 and (sweep.new_results or not sweep.last_optimize)
        if not waiting and now - sweep.last_optimize < (interval / 5 if enough else interval):
            return
        sweep.last_optimize, sweep.new_results = now, 0
        # In a thread: a refit of a large sweep takes seconds, and publishing must not wait for it.
        sweep.refit = threading.Thread(
            target=self._refit, args=(sweep,), daemon=True, name=f"refit-{sweep.sweep_id}"
        )
        sweep.refit.start()

    def _refit(self, sweep: _Sweep) -> None:
        from orchestrator.optimizer.service import refit_sweep

        try:
            refit_sweep(self.state, sweep.sweep_id)
        except Exception:  # noqa: BLE001 - a failed refit must not stop the sweep
            log.exception("optimizer refit failed for %s", sweep.sweep_id)
        finally:
            if self._gated(sweep):
                sweep.allowance = max(1, sum(self.pacing.consumers.get(q, 0) for q in sweep.queues))

    def _drain(self, block_ms: int) -> bool:
        if not self.sweeps:
            self.state.wait_for_sweeps(block_ms / 1000)
            return False
        fresh = self.state.results.read(list(self.sweeps), self.settings.result_batch_size, block_ms or None)
        moved = self._take(fresh)
        for sweep in self.sweeps.values():
            self._write(sweep)
        return moved

    def _take(self, fresh: dict[str, list[tuple[str, dict[str, Any]]]]) -> bool:
        """Buffer result rows read from the sweeps' streams (``ResultStream.read``)."""
        got = False
        now = time.monotonic()
        for sweep_id, rows in fresh.items():
            sweep = self.sweeps[sweep_id]
            by_queue: dict[str, list[float]] = {}  # queue -> [results, their run time]
            for entry_id, row in rows:
                if not sweep.buffer:
                    sweep.buffer_since = now
                sweep.buffer.append((entry_id, row))
                tally = by_queue.setdefault(row.get("resource") or "", [0, 0.0])
                tally[0] += 1
                tally[1] += float(row.get("execution_time") or 0.0)
                got = True
            sweep.new_results += sum(int(n) for n, _ in by_queue.values())
            sweep.last_result = now
            for queue, (n, seconds) in by_queue.items():
                self.pacing.completed(queue, int(n), now, seconds, sweep_id)
        return got

    def _write(self, sweep: _Sweep, force: bool = False) -> None:
        if not sweep.buffer:
            return
        due = (
            len(sweep.buffer) >= self.settings.result_batch_size
            or time.monotonic() - sweep.buffer_since >= self.flush_seconds
        )
        if not (due or force):
            return
        ids = [eid for eid, _ in sweep.buffer]
        self.store.write_rows(
            sweep.sweep_id, [row for _, row in sweep.buffer], batch=ids[0].replace("-", "_")
        )
        self.state.results.ack(sweep.sweep_id, ids)
        sweep.buffer.clear()

    def _finish(self, sweep: _Sweep, meta: dict[str, Any]) -> None:
        """Deadline, cancellation and completion, from the step's snapshot ``meta``."""
        st, sid = self.state, sweep.sweep_id
        state = meta.get("state")
        if state in ACTIVE_STATES and meta.get("deadline") and time.time() > float(meta["deadline"]):
            st.set_state(sid, Lifecycle.CANCELLING, final_state=Lifecycle.TIMED_OUT.value)
            st.event(sid, "alert", "max_duration reached: no new experiments will start")
            state = meta["state"] = Lifecycle.CANCELLING
            meta["final_state"] = Lifecycle.TIMED_OUT
        if (
            state == Lifecycle.RUNNING
            and meta.get("fill_done") == "1"
            and self._room(sweep, meta) <= 0
            and meta["n_running"] == 0
            and not sum(meta["queued"].values())
        ):
            st.set_state(sid, Lifecycle.CANCELLING, final_state=Lifecycle.COMPLETED.value)
            st.event(
                sid, "info", f"max_experiments ({sweep.plan.config.max_experiments}) ran: the rest will not"
            )
            state = meta["state"] = Lifecycle.CANCELLING
            meta["final_state"] = Lifecycle.COMPLETED
        if state == Lifecycle.CANCELLING:
            in_flight, terminal = st.stop_starting(sid)
            if in_flight == 0:
                self._drain_once(sweep)  # nothing runs: the terminal count is final
                st.count_never_started(sid, max(0, int(meta.get("total", 0)) - terminal))
                self._close(sweep, Lifecycle(meta.get("final_state") or Lifecycle.CANCELLED))
            return
        if meta.get("fill_done") != "1" or state != Lifecycle.RUNNING:
            return
        if meta["n_terminal"] >= int(meta.get("total", 0)):
            self._drain_once(sweep)
            if st.results.backlog(sid) == 0 and not sweep.buffer:
                self._close(sweep, Lifecycle.COMPLETED)

    def _reconcile(self, sweep: _Sweep) -> None:
        """Send again what a lost message left waiting for ever.

        A worker killed between popping a message and noting it unacked loses it (see
        :meth:`Dispatcher.in_flight`), as can a Redis restarted from a second-old AOF. Its
        experiment would stay queued, or its quantum task unpolled (paid, and never recorded).
        Once a sweep has had no result for ``RECONCILE_SECONDS``, what waits for a message is
        compared with what the broker holds; what is missing twice in a row (a message popped
        a moment ago is noted unacked within microseconds) goes back to pending, or has its poll
        message sent again. A duplicate is harmless: the claim and the once-per-task settlement.
        """
        now = time.monotonic()
        if now - max(sweep.last_result, sweep.reconciled) < RECONCILE_SECONDS:
            return
        sweep.reconciled, sid = now, sweep.sweep_id
        waiting = self.state.pending.awaiting(sid)
        held = self.dispatcher.in_flight()
        runs = frozenset(
            (queue, index)
            for queue, indices in waiting.queued.items()
            for index in indices
            if (sid, index) not in held.experiments
        )
        polls = frozenset(arn for arn in waiting.polls if arn not in held.polls)
        lost_runs, lost_polls = runs & sweep.missing_runs, polls & sweep.missing_polls
        sweep.missing_runs, sweep.missing_polls = runs, polls
        for queue in RESOURCE_QUEUES:
            indices = [index for q, index in lost_runs if q == queue]
            if n := self.state.pending.requeue_lost(sid, queue, indices):
                self.state.event(sid, "alert", f"{n} experiment(s) whose message was lost back to pending")
        for arn in sorted(lost_polls):
            poll = PollMessage.of(waiting.polls[arn])
            self.dispatcher.send(Task.POLL, poll.kwargs(), poll.experiment.resource)
            self.state.event(sid, "alert", f"the poll message of quantum task {arn} was lost: sent again")

    def _drain_once(self, sweep: _Sweep) -> bool:
        """Write every result row still in the sweep's stream; True if there were any."""
        got = self._take(self.state.results.read([sweep.sweep_id], 1_000_000))
        self._write(sweep, force=True)
        return got

    def _close(self, sweep: _Sweep, final: Lifecycle) -> None:
        if final == Lifecycle.COMPLETED:
            # started first, so whoever sees the sweep completed here finds its report under way
            self._report(sweep.sweep_id)
        self.state.close(sweep.sweep_id, final)
        self.sweeps.pop(sweep.sweep_id, None)
        log.info("sweep %s %s", sweep.sweep_id, final.value)

    def _report(self, sweep_id: str) -> None:
        """Write the completed sweep's report and analysis (``analysis.on_sweep_completed``).

        In a thread: a large sweep's report takes seconds and the other sweeps must not wait for
        it. Not a daemon, and joined by :meth:`release`, so a process that exits right after the
        sweep completes (``orchestrator run``) still writes it.
        """
        if self.store.report_current(sweep_id):
            log.info("sweep %s: its report is up to date", sweep_id)
            return
        write = _write_report_inline if self.report_inline else _write_report
        thread = threading.Thread(target=write, args=(self.store.root, sweep_id), name=f"report-{sweep_id}")
        thread.start()
        self.reports = {sid: t for sid, t in self.reports.items() if t.is_alive()}  # a long-lived coordinator
        self.reports[sweep_id] = thread


def _write_report_inline(results_dir: Any, sweep_id: str) -> None:
    from analysis.publish import on_sweep_completed  # SciPy and matplotlib: in the thread, not the loop

    on_sweep_completed(results_dir, sweep_id)


# The analysis of a completed sweep, run by a fresh interpreter at a lower priority.
_REPORT_SCRIPT = (
    "import os, sys\n"
    f"os.nice({REPORT_NICENESS})\n"
    "from analysis.publish import on_sweep_completed\n"
    "sys.exit(0 if on_sweep_completed(sys.argv[1], sys.argv[2]) else 1)\n"
)


def _write_report(results_dir: Any, sweep_id: str) -> None:
    """Write the report in a process of its own, at a lower priority, and wait for it.

    Drawing a large sweep's report takes seconds of CPU. In the coordinator's own process it held
    the GIL from the coordinator's loop and, on a small machine, the CPU from the workers: the
    next sweep's 10-ms experiments ran at 0.86 utilization while it drew, 0.93 without
    (``benchmarks/peers.py``). Experiments come first; the report follows.
    """
    done = subprocess.run(
        [sys.executable, "-c", _REPORT_SCRIPT, str(results_dir), sweep_id],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        log.warning("the report of sweep %s was not written: %s", sweep_id, done.stderr[-2000:])


def _extra(row: dict[str, Any]) -> dict[str, Any]:
    extra = row.get("extra")
    return json.loads(extra) if isinstance(extra, str) and extra else {}


__all__ = ["Coordinator"]
