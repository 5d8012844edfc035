"""The coordinator: fills pending sets, publishes a bounded window, writes results to Parquet.

One coordinator serves each sweep at a time (a Redis lock with a TTL, so a killed coordinator's
sweep is picked up by the next one). Its loop, per sweep:

1. *fill*: materialise the next chunk of valid experiments into the pending sorted sets
   (reusing any experiment that already has a successful result);
2. *publish*: top each queue up to its window (about 2x its consumers), best score first;
3. *drain*: move result rows from the sweep's Redis stream into Parquet, acking only after the
   file is in place;
4. *finish*: deadline, cancellation and completion.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis

from orchestrator.config import SweepConfiguration
from orchestrator.dispatch import Dispatcher
from orchestrator.plan import SweepPlan
from orchestrator.results import ResultStore
from orchestrator.scheduler import FINAL_STATES
from orchestrator.settings import Settings
from orchestrator.state import PREFIX, RESULTS_GROUP, SweepState

log = logging.getLogger(__name__)

FILL_CHUNK = 50_000
RESOURCE_QUEUES = ("local_cpu", "braket_sim", "braket_qpu")


def priority(indices: np.ndarray, adaptive: bool, seed: int) -> np.ndarray:
    """Initial scores (higher runs first): index order, or a seeded scramble for adaptive sweeps
    so the first runs spread over the space until the optimizer re-scores them."""
    indices = np.asarray(indices, dtype=np.uint64)
    if not adaptive:
        return -indices.astype(np.float64)
    x = indices + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(12)).astype(np.float64) / 2.0**52


@dataclass
class _Sweep:
    sweep_id: str
    plan: SweepPlan
    done_ids: dict[str, str] | None = None  # experiment_id -> sweep it was stored in
    buffer: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    buffer_since: float = 0.0
    last_optimize: float = 0.0


class Coordinator:
    """Serves every active sweep it can lock. ``run_until`` drives it from a CLI or a thread."""

    def __init__(self, state: SweepState, store: ResultStore, dispatcher: Dispatcher, settings: Settings,
                 *, window: int | None = None, optimize_inline: bool = True) -> None:
        self.state = state
        self.store = store
        self.dispatcher = dispatcher
        self.settings = settings
        self.window = window or settings.publish_window
        self.optimize_inline = optimize_inline
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.sweeps: dict[str, _Sweep] = {}
        self.flush_seconds = 1.0

    # -- loop -------------------------------------------------------------------------------------

    def run_until(self, done: Callable[[], bool], on_tick: Callable[[], None] | None = None,
                  tick_seconds: float = 0.1) -> None:
        last_report = 0.0
        while True:
            busy = self.step(block_ms=int(tick_seconds * 1000))
            if on_tick and time.monotonic() - last_report > 0.2:
                on_tick()
                last_report = time.monotonic()
            if done():
                self.flush_all()
                if on_tick:
                    on_tick()
                return
            if not busy:
                time.sleep(0.005)

    def step(self, block_ms: int = 100) -> bool:
        """One pass over the served sweeps. Returns True if anything moved."""
        self.state.r.hset(f"{PREFIX}coordinators", self.token, time.time())
        moved = False
        for sweep_id in sorted(self.state.r.smembers(f"{PREFIX}sweeps")):
            if sweep_id not in self.sweeps:
                if not self._lock(sweep_id):
                    continue
                self._load(sweep_id)
            elif not self._lock(sweep_id):
                self.sweeps.pop(sweep_id)  # lost the lock: another coordinator took over
                continue
            sweep = self.sweeps[sweep_id]
            meta = self.state.meta(sweep_id)
            moved |= self._fill(sweep, meta)
            if meta.get("state") == "running":
                moved |= self._publish(sweep)
                self._maybe_optimize(sweep)
        moved |= self._drain(block_ms if not moved else 0)
        for sweep_id in list(self.sweeps):
            self._finish(self.sweeps[sweep_id])
        return moved

    def flush_all(self) -> None:
        for sweep in self.sweeps.values():
            self._write(sweep, force=True)

    def release(self) -> None:
        self.flush_all()
        for sweep_id in self.sweeps:
            key = self.state.key(sweep_id, "coordinator")
            if self.state.r.get(key) == self.token:
                self.state.r.delete(key)
        self.state.r.hdel(f"{PREFIX}coordinators", self.token)

    # -- per sweep --------------------------------------------------------------------------------

    def _lock(self, sweep_id: str) -> bool:
        key = self.state.key(sweep_id, "coordinator")
        r = self.state.r
        if r.set(key, self.token, nx=True, ex=15):
            return True
        if r.get(key) == self.token:
            r.expire(key, 15)
            return True
        return False

    def _load(self, sweep_id: str) -> _Sweep:
        meta = self.state.meta(sweep_id)
        config = SweepConfiguration.model_validate_json(meta["config"])
        plan = SweepPlan(config, json.loads(meta["code_versions"]))
        try:
            self.state.r.xgroup_create(self.state.key(sweep_id, "results"), RESULTS_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:  # BUSYGROUP: it exists already (resume)
            if "BUSYGROUP" not in str(exc):
                raise
        sweep = _Sweep(sweep_id, plan)
        # Entries a previous coordinator read but never wrote to Parquet (it died): take them first.
        key = self.state.key(sweep_id, "results")
        self.sweeps[sweep_id] = sweep
        self._take(self.state.r.xreadgroup(RESULTS_GROUP, "coordinator", {key: "0"}, count=1_000_000))
        return sweep

    def _fill(self, sweep: _Sweep, meta: dict[str, str]) -> bool:
        if meta.get("fill_done") == "1" or meta.get("state") not in ("running", "paused"):
            return False
        st, plan = self.state, sweep.plan
        if sweep.done_ids is None:
            # Successful experiments anywhere in the dataset or in Redis are never run again.
            sweep.done_ids = self.store.successful()
            for exp_id in st.r.smembers(f"{PREFIX}done"):
                sweep.done_ids.setdefault(exp_id, "")
        cursor = int(meta.get("fill_cursor", 0))
        end = min(cursor + FILL_CHUNK, plan.space.size)
        points = next(plan.space.iter_valid(cursor, chunk=end - cursor), np.empty(0, dtype=np.int64))
        indices = plan.experiment_indices(points)
        reused: list[int] = []
        copy_ids: set[str] = set()
        if sweep.done_ids and len(indices):
            keep = []
            for index, exp_id in plan.experiment_ids(indices):
                origin = sweep.done_ids.get(exp_id)
                if origin is None:
                    keep.append(index)
                else:
                    reused.append(index)
                    if origin != sweep.sweep_id:
                        copy_ids.add(exp_id)
            indices = np.asarray(keep, dtype=np.int64)
        if copy_ids:
            rows = self.store.rows_for(copy_ids)
            for row in rows:
                row["sweep_id"] = sweep.sweep_id
            self.store.write_rows(sweep.sweep_id, rows, batch=f"reused-{cursor}")
        scores = priority(indices, plan.config.adaptive_sampling, plan.config.seed)
        pipe = st.r.pipeline(transaction=True)
        by_queue: dict[str, dict[str, float]] = {}
        project_queue = [plan.projects[name].resource for name in plan._order]
        n_projects = len(project_queue)
        for index, score in zip(indices.tolist(), scores.tolist(), strict=True):
            by_queue.setdefault(project_queue[index % n_projects], {})[str(index)] = score
        for queue, members in by_queue.items():
            items = list(members.items())
            for lo in range(0, len(items), 10_000):
                pipe.zadd(st.pending_key(sweep.sweep_id, queue), dict(items[lo:lo + 10_000]), nx=True)
        for index in reused:
            pipe.hsetnx(st.key(sweep.sweep_id, "terminal"), index, "reused")
        meta_key = st.key(sweep.sweep_id, "meta")
        pipe.hincrby(meta_key, "n_reused", len(reused))
        pipe.hincrby(meta_key, "total", len(indices) + len(reused))
        pipe.hset(meta_key, mapping={"fill_cursor": end, "fill_done": int(end >= plan.space.size)})
        pipe.execute()
        if reused:
            st.event(sweep.sweep_id, "info", f"reused {len(reused)} completed experiment(s)")
        return True

    def window_for(self, queue: str) -> int:
        if self.window:
            return self.window
        return max(2, 2 * self.state.consumers(queue))

    def _publish(self, sweep: _Sweep) -> bool:
        st, plan = self.state, sweep.plan
        sent = False
        for queue in RESOURCE_QUEUES:
            pending_key = st.pending_key(sweep.sweep_id, queue)
            free = self.window_for(queue) - st.r.scard(st.queued_key(sweep.sweep_id, queue))
            if free <= 0:
                continue
            top = st.r.zrange(pending_key, 0, free - 1, desc=True)
            if not top:
                continue
            experiments = [plan.experiment(int(i)) for i in top]
            self.dispatcher.publish(experiments)
            # Recorded after sending: a crash in between re-publishes (the worker's lease and
            # terminal check make the duplicate harmless); the reverse order could lose it.
            pipe = st.r.pipeline(transaction=True)
            pipe.zrem(pending_key, *top)
            pipe.sadd(st.queued_key(sweep.sweep_id, queue), *top)
            pipe.execute()
            sent = True
        return sent

    def _maybe_optimize(self, sweep: _Sweep) -> None:
        if not (self.optimize_inline and sweep.plan.config.adaptive_sampling):
            return
        now = time.monotonic()
        if now - sweep.last_optimize < self.settings.optimizer_interval:
            return
        sweep.last_optimize = now
        try:
            from orchestrator.optimizer.service import refit_sweep
        except ImportError:
            return
        try:
            refit_sweep(self.state, self.store, sweep.sweep_id)
        except Exception:  # noqa: BLE001 - a failed refit must not stop the sweep
            log.exception("optimizer refit failed for %s", sweep.sweep_id)

    def _drain(self, block_ms: int) -> bool:
        if not self.sweeps:
            time.sleep(block_ms / 1000)
            return False
        streams = {self.state.key(s, "results"): ">" for s in self.sweeps}
        fresh = self.state.r.xreadgroup(RESULTS_GROUP, "coordinator", streams,
                                        count=self.settings.result_batch_size, block=block_ms or None)
        moved = self._take(fresh)
        for sweep in self.sweeps.values():
            self._write(sweep)
        return moved

    def _take(self, response: Any) -> bool:
        got = False
        for key, entries in response or []:
            sweep = self.sweeps[key.split(":")[2]]
            for entry_id, fields in entries:
                if not fields:
                    continue
                if not sweep.buffer:
                    sweep.buffer_since = time.monotonic()
                sweep.buffer.append((entry_id, json.loads(fields["row"])))
                got = True
        return got

    def _write(self, sweep: _Sweep, force: bool = False) -> None:
        if not sweep.buffer:
            return
        due = (len(sweep.buffer) >= self.settings.result_batch_size
               or time.monotonic() - sweep.buffer_since >= self.flush_seconds)
        if not (due or force):
            return
        ids = [eid for eid, _ in sweep.buffer]
        self.store.write_rows(sweep.sweep_id, [row for _, row in sweep.buffer], batch=ids[0].replace("-", "_"))
        key = self.state.key(sweep.sweep_id, "results")
        pipe = self.state.r.pipeline()
        pipe.xack(key, RESULTS_GROUP, *ids)
        pipe.xdel(key, *ids)
        pipe.execute()
        sweep.buffer.clear()

    def _finish(self, sweep: _Sweep) -> None:
        st, sid = self.state, sweep.sweep_id
        meta = st.meta(sid)
        state = meta.get("state")
        if state in ("running", "paused") and meta.get("deadline") and time.time() > float(meta["deadline"]):
            st.set_state(sid, "cancelling", final_state="timed_out")
            st.event(sid, "alert", "max_duration reached: no new experiments will start")
            state = "cancelling"
        if state == "cancelling":
            for queue in RESOURCE_QUEUES:
                st.r.delete(st.pending_key(sid, queue))
            st.r.hset(st.key(sid, "meta"), "fill_done", 1)
            in_flight = st.r.hlen(st.key(sid, "running"))
            if in_flight == 0:
                self._drain_once(sweep)
                terminal = st.r.hlen(st.key(sid, "terminal"))
                total = int(meta.get("total", 0))
                st.r.hset(st.key(sid, "meta"), "n_cancelled", max(0, total - terminal))
                self._close(sweep, meta.get("final_state") or "cancelled")
            return
        if meta.get("fill_done") != "1" or state != "running":
            return
        terminal = st.r.hlen(st.key(sid, "terminal"))
        if terminal >= int(meta.get("total", 0)):
            self._drain_once(sweep)
            if st.r.xlen(st.key(sid, "results")) == 0 and not sweep.buffer:
                self._close(sweep, "completed")

    def _drain_once(self, sweep: _Sweep) -> None:
        key = self.state.key(sweep.sweep_id, "results")
        self._take(self.state.r.xreadgroup(RESULTS_GROUP, "coordinator", {key: ">"}, count=1_000_000))
        self._write(sweep, force=True)

    def _close(self, sweep: _Sweep, final: str) -> None:
        st, sid = self.state, sweep.sweep_id
        st.set_state(sid, final, finished_at=time.time())
        st.r.srem(f"{PREFIX}sweeps", sid)
        st.r.delete(st.key(sid, "coordinator"))
        st.event(sid, "info", f"sweep {final}")
        self.sweeps.pop(sid, None)
        log.info("sweep %s %s", sid, final)


def coordinator_alive(state: SweepState, max_age_s: float = 10.0) -> bool:
    now = time.time()
    return any(now - float(ts) < max_age_s for ts in state.r.hgetall(f"{PREFIX}coordinators").values())


__all__ = ["Coordinator", "FINAL_STATES", "coordinator_alive", "priority"]
