"""The coordinator: fills pending sets, publishes a bounded window, writes results to Parquet.

One coordinator serves each sweep at a time (a Redis lock with a TTL, so a killed coordinator's
sweep is picked up by the next one). Its loop, per sweep:

1. *fill*: materialise the optimizer's picks and, while the pending sorted sets run low, the
   next chunk of valid experiments past the fill cursor (reusing any experiment that already
   has a successful result; :mod:`orchestrator.fill`);
2. *publish*: top each queue up to its window, best score first (see :mod:`orchestrator.pacing`);
3. *drain*: move result rows from the sweep's Redis stream into Parquet, acking only after the
   file is in place;
4. *reconcile*: send again what a lost message left waiting (:mod:`orchestrator.reconcile`);
5. *finish*: deadline, cancellation and completion; a completed sweep's report is drawn off the
   loop (:mod:`orchestrator.reports`).
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from core.config import SweepConfiguration
from core.plan import SweepPlan
from core.protocol import ACTIVE_STATES, RESOURCE_QUEUES, Lifecycle
from core.results import ResultStore
from core.settings import Settings
from orchestrator.code import release_code
from orchestrator.dispatch import PUBLISH_ERRORS, Dispatcher
from orchestrator.fill import Filler
from orchestrator.optimizer.missing_metrics import ReportedMetrics, pause_on_alert
from orchestrator.pacing import Pacing
from orchestrator.reconcile import Reconciler
from orchestrator.refits import Refits
from orchestrator.reports import Reports, sweep_outcome
from orchestrator.store import STORE_ERRORS, SweepState

log = logging.getLogger(__name__)
#: what a broker outage raises, from Redis calls and from publishing
BROKER_ERRORS = (*STORE_ERRORS, *PUBLISH_ERRORS)

# While busy, a step starts at most every PACE_SECONDS: results then come in batches instead of
# one step (four round trips) per result; the window holds far more than that much work.
PACE_SECONDS = 0.01
HOUSEKEEPING_SECONDS = 1.0  # heartbeat, lock refresh and consumer count, not on every step
LOCK_TTL = 15
OUTAGE_BACKOFF_MAX = 2.0  # seconds between attempts while the broker is unreachable (a restart takes ~1.5 s)
# Meta fields a step reads (HMGET): never the whole hash, which holds the config and optimizer state.
_STEP_FIELDS = ("state", "fill_done", "fill_cursor", "total", "deadline", "final_state", "n_reused")


@dataclass
class _Sweep:
    """What the coordinator keeps of a sweep it serves, from one step to the next."""

    sweep_id: str
    plan: SweepPlan
    filler: Filler
    refits: Refits
    queues: tuple[str, ...]  # the resource queues its projects use
    batched: frozenset[str]  # those that may batch (no managed quantum task on them)
    buffer: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    buffer_since: float = 0.0
    last_result: float = field(default_factory=time.monotonic)
    reconciler: Reconciler = field(default_factory=Reconciler)
    reported: ReportedMetrics | None = None  # what its results report, for the missing-metric alert


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
        #: the reports of completed sweeps being written
        self.reports = Reports(store)

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
            moved |= sweep.filler.fill(meta)
            if meta.get("state") == Lifecycle.RUNNING:
                moved |= self._publish(sweep, meta)
                sweep.refits.maybe_start()
        # a sweep about to end is not kept waiting for results that will not come
        ending = any(_ending(snapshots[sweep_id]) for sweep_id in self.sweeps)
        moved |= self._drain(0 if moved or ending else block_ms)
        for sweep_id in list(self.sweeps):
            sweep = self.sweeps[sweep_id]
            sweep.reconciler.step(sweep_id, sweep.last_result, self.state, self.dispatcher)
            if (
                sweep.reported
                and (alert := sweep.reported.problem())
                and pause_on_alert(self.state, sweep_id, alert)
            ):
                snapshots[sweep_id]["state"] = Lifecycle.PAUSED  # not completed in this step
            self._finish(sweep, snapshots[sweep_id])
        return moved

    def _housekeeping(self) -> None:
        self._housekept = time.monotonic()
        self.state.registry.coordinator_beat(self.token)
        for sweep_id, sweep in list(self.sweeps.items()):
            if not self._lock(sweep_id):
                self.sweeps.pop(sweep_id)  # lost the lock: another coordinator took over
                continue
            if orphans := self.state.pending.requeue_orphans(sweep_id, self._queue_of(sweep)):
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

    def _queue_of(self, sweep: _Sweep) -> Callable[[int], str]:
        """The queue of an experiment of ``sweep``; a ladder's promoted point is read from Redis
        when this coordinator's plan has not seen it yet."""

        def queue_of(index: int) -> str:
            try:
                return sweep.plan.resource_of(index)
            except KeyError:
                sweep.plan.added = self.state.optimizer().added(sweep.sweep_id)
                return sweep.plan.resource_of(index)

        return queue_of

    def _snapshot(self) -> tuple[set[str], dict[str, dict[str, Any]]]:
        """The sweeps to serve, and per served sweep its step fields, queued and terminal counts."""
        return self.state.snapshot([(s.sweep_id, s.queues) for s in self.sweeps.values()], _STEP_FIELDS)

    def flush_all(self) -> None:
        for sweep in self.sweeps.values():
            self._write(sweep, force=True)

    def release(self) -> None:
        self.flush_all()
        self.state.registry.forget_coordinator(self.token, list(self.sweeps))
        self.reports.close()

    # -- per sweep --------------------------------------------------------------------------------

    def _lock(self, sweep_id: str) -> bool:
        return self.state.registry.lock_sweep(sweep_id, self.token, LOCK_TTL)

    def _load(self, sweep_id: str) -> _Sweep:
        meta = self.state.meta(sweep_id)
        config = SweepConfiguration.model_validate_json(meta["config"])
        plan = SweepPlan.of(config, meta)
        used, managed = plan.queues()  # a fidelity ladder's rungs may wait in several
        queues = tuple(q for q in RESOURCE_QUEUES if q in used)
        refits = Refits(
            sweep_id,
            config,
            queues,
            state=self.state,
            pacing=self.pacing,
            interval=self.settings.optimizer_interval,
            inline=self.optimize_inline,
            pool_size=self.settings.candidate_pool,
        )
        reported = ReportedMetrics(config)
        if not reported.settled:  # what this sweep's results reported before this coordinator
            reported.see(self.state.optimizer().observations(sweep_id))
        filler = Filler(sweep_id, plan, self.state, self.store, reported)
        sweep = _Sweep(sweep_id, plan, filler, refits, queues, frozenset(queues) - managed, reported=reported)
        self.state.pending.requeue_queued(sweep_id)
        # Entries a previous coordinator read but never wrote to Parquet (it died): take them first.
        self.sweeps[sweep_id] = sweep
        self._take({sweep_id: self.state.results.open(sweep_id)})
        return sweep

    def _sharing(self, queue: str) -> int:
        return sum(queue in s.queues for s in self.sweeps.values())

    def _publish(self, sweep: _Sweep, meta: dict[str, Any]) -> bool:
        st, plan = self.state, sweep.plan
        sent, room = False, min(self._room(sweep, meta), sweep.refits.allowance)
        left = (  # an upper bound while constraints may exclude points past the fill cursor
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
            # mark and the send is repaired when a coordinator loads the sweep
            # (``PendingSets.requeue_queued``).
            top = st.pending.take(sweep.sweep_id, queue, free)
            if not top:
                continue
            members = [m for m, _ in top]
            meta["queued"][queue] += len(members)
            room -= len(members)
            sweep.refits.allowance -= len(members)
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

    def _drain(self, block_ms: int) -> bool:
        if not self.sweeps:  # woken by a new sweep: the loop serves it now, without its idle pause
            return self.state.wait_for_sweeps(block_ms / 1000)
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
            if sweep.reported:
                sweep.reported.see(row for _, row in rows)
            for entry_id, row in rows:
                if not sweep.buffer:
                    sweep.buffer_since = now
                sweep.buffer.append((entry_id, row))
                tally = by_queue.setdefault(row.get("resource") or "", [0, 0.0])
                tally[0] += 1
                tally[1] += float(row.get("execution_time") or 0.0)
                got = True
            sweep.refits.new_results += sum(int(n) for n, _ in by_queue.values())
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
                never = int(meta.get("total", 0)) - sweep.filler.excluded_ahead(meta) - terminal
                st.count_never_started(sid, max(0, never))
                self._close(sweep, Lifecycle(meta.get("final_state") or Lifecycle.CANCELLED))
            return
        if meta.get("fill_done") != "1" or state != Lifecycle.RUNNING:
            return
        if meta["n_terminal"] >= int(meta.get("total", 0)):
            with self._settling(sweep, int(meta.get("total", 0))) as settled:
                if not settled:
                    return  # its last promotions were just added (or a refit is deciding them)
                self._drain_once(sweep)
                if st.results.backlog(sid) == 0 and not sweep.buffer:
                    self._close(sweep, Lifecycle.COMPLETED)

    @contextmanager
    def _settling(self, sweep: _Sweep, total: int) -> Iterator[bool]:
        """A fidelity ladder's last promotions are decided before its sweep completes, under the
        refit lock (see :func:`~orchestrator.optimizer.service.settling`); others complete at once."""
        if not any(spec.fidelities for spec in sweep.plan.projects.values()):
            yield True
            return
        from orchestrator.optimizer.service import settling

        with settling(self.state, sweep.sweep_id, sweep.plan, total) as settled:
            yield settled

    def _drain_once(self, sweep: _Sweep) -> bool:
        """Write every result row still in the sweep's stream; True if there were any."""
        got = self._take(self.state.results.read([sweep.sweep_id], 1_000_000))
        self._write(sweep, force=True)
        return got

    def _close(self, sweep: _Sweep, final: Lifecycle) -> None:
        # started first, so whoever sees the sweep closed finds its report under way; every final
        # state has one, and a cancelled or timed-out sweep's report says so
        outcome = sweep_outcome(final, self.state.meta(sweep.sweep_id), sweep.plan.config)
        self.reports.start(sweep.sweep_id, outcome)
        self.state.close(sweep.sweep_id, final)
        # nothing of it runs any more (no quantum task waits for its analysis): its archives go
        # unless another sweep uses them
        release_code(self.state.code(), sweep.sweep_id, sweep.plan.code_versions.values(), self.store.root)
        self.sweeps.pop(sweep.sweep_id, None)
        log.info("sweep %s %s", sweep.sweep_id, final.value)


def _ending(meta: dict[str, Any]) -> bool:
    """Whether a step's snapshot shows a running sweep with every experiment done: its last
    rows are in the stream already, and the step that reads them closes it."""
    return meta.get("state") == Lifecycle.RUNNING and meta["n_terminal"] >= int(meta.get("total", 0))


__all__ = ["Coordinator"]
