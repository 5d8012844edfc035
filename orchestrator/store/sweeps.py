"""Sweep state in Redis: a deployment's sweeps, their lifecycle and events, and what a worker
does with an experiment (claim, lease, record, release).

:class:`SweepState` is the way in: the pending sets, the result stream, the registry and the
quantum tasks hang off it (``state.pending``, ``state.results``, ...), each in a module of its
own. Every key is named in :mod:`orchestrator.store.keys`; every multi-step change that must be
atomic is one Lua script (``RECORD``, ``CLAIM``, ...). Callers ask for operations and never get
the client.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from core.protocol import RESOURCE_QUEUES, Claim, Lifecycle
from orchestrator.store import keys
from orchestrator.store import scripts as lua
from orchestrator.store.connection import bytes_client, connect
from orchestrator.store.optimizer import OptimizerStore, observation
from orchestrator.store.pending import PendingSets
from orchestrator.store.quantum import QuantumTasks
from orchestrator.store.registry import Registry
from orchestrator.store.results import ResultStream

if TYPE_CHECKING:
    from orchestrator.store.budget import BudgetLedger
    from orchestrator.store.code import CodeStore
    from orchestrator.store.ledgers import BraketLedgers
    from orchestrator.store.pruning import PruningStore

EVENTS_KEPT = 200  # per sweep, newest first


_CLAIMS = {c.value.encode(): c for c in Claim} | {c.value: c for c in Claim}  # a reply's outcome


@dataclass(frozen=True, slots=True)
class Record:
    """One result row for :meth:`SweepState.record_many`; ``summary``: its :func:`observation`,
    when the caller has it cheaper than from the row."""

    index: int
    experiment_id: str
    row: dict[str, Any]
    status: str
    final: bool = True
    lease_token: str = ""
    cost: float | None = None
    summary: str | None = None


class SweepState:
    """Typed access to one deployment's sweep state in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self._r = client
        script = client.register_script
        self._record, self._refresh, self._claim = (
            script(lua.RECORD),
            script(lua.REFRESH_LEASES),
            script(lua.CLAIM),
        )
        self._release, self._transition = script(lua.RELEASE), script(lua.TRANSITION)
        self._pause = script(lua.PAUSE)
        self._give_back, self._event = script(lua.GIVE_BACK), script(lua.EVENT)
        self.registry = Registry(client)
        self.quantum = QuantumTasks(client)
        self.pending = PendingSets(client)
        self.results = ResultStream(client)

    @classmethod
    def from_url(cls, url: str) -> SweepState:
        return cls(connect(url))

    def ping(self) -> bool:
        """True if the server answers."""
        try:
            return bool(self._r.ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    # -- keys -------------------------------------------------------------------------------------

    @staticmethod
    def key(sweep_id: str, part: str) -> str:
        return keys.sweep(sweep_id, part)

    @staticmethod
    def pending_key(sweep_id: str, queue: str) -> str:
        return keys.pending(sweep_id, queue)

    def sweep_keys(self, sweep_id: str) -> list[str]:
        return list(self._r.scan_iter(keys.sweep(sweep_id, "*")))

    # -- sweep metadata ---------------------------------------------------------------------------

    def meta(self, sweep_id: str) -> dict[str, str]:
        return self._r.hgetall(self.key(sweep_id, "meta"))

    def exists(self, sweep_id: str) -> bool:
        return bool(self._r.exists(self.key(sweep_id, "meta")))

    def state(self, sweep_id: str) -> str | None:
        return self._r.hget(self.key(sweep_id, "meta"), "state")

    def set_state(self, sweep_id: str, state: str, **fields: Any) -> None:
        self._r.hset(
            self.key(sweep_id, "meta"), mapping={"state": state, **{k: str(v) for k, v in fields.items()}}
        )

    def config_json(self, sweep_id: str) -> str | None:
        return self._r.hget(self.key(sweep_id, "meta"), "config")

    def event(self, sweep_id: str, level: str, message: str) -> int:
        """Note an event (newest first, capped at ``EVENTS_KEPT``); returns its id (1, 2, ...)."""
        entry = json.dumps({"ts": time.time(), "level": level, "message": message})
        keys_ = [self.key(sweep_id, "events"), self.key(sweep_id, "events:seq")]
        return int(self._event(keys=keys_, args=[entry, EVENTS_KEPT]))

    def events(self, sweep_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The newest ``limit`` events, newest first; each has ``id``, ``ts``, ``level``, ``message``."""
        return [json.loads(e) for e in self._r.lrange(self.key(sweep_id, "events"), 0, limit - 1)]

    def events_after(self, sweep_id: str, after: int = 0) -> list[dict[str, Any]]:
        """Events with an id above ``after``, oldest first (what a resumed SSE stream missed).

        Events older than the cap are gone: a client that was away for more than ``EVENTS_KEPT``
        events gets the oldest kept one first and can tell from the gap in ids.
        """
        kept = self.events(sweep_id, EVENTS_KEPT)
        return [e for e in reversed(kept) if e.get("id", 0) > after]

    # -- worker side ------------------------------------------------------------------------------

    def is_terminal(self, sweep_id: str, index: int) -> bool:
        return bool(self._r.hexists(self.key(sweep_id, "terminal"), index))

    def claim(
        self,
        sweep_id: str,
        queue: str,
        index: int,
        token: str,
        ttl_s: float,
        host: str,
        *,
        low_shots: bool = False,
    ) -> tuple[Claim, int]:
        """Check and start an experiment in one round trip: ``("run", attempt)`` if this delivery
        should run it, else ``(reason, 0)`` with reason ``unknown-sweep``, ``cancelled``,
        ``already-done`` or ``leased`` (another delivery holds the lease). With ``low_shots``
        (the low-shot stage of shots as a budget) a stage already run counts as done."""
        return self.claim_many(
            sweep_id, queue, [index], token, ttl_s, host, low_shots={index} if low_shots else None
        )[0]

    def claim_many(
        self,
        sweep_id: str,
        queue: str,
        indices: list[int],
        token: str,
        ttl_s: float,
        host: str,
        *,
        low_shots: set[int] | None = None,
    ) -> list[tuple[Claim, int]]:
        """:meth:`claim` for each of ``indices`` (a batch message), in one script call."""
        if not indices:
            return []
        low_shots = low_shots or set()
        running = json.dumps({"host": host, "since": time.time()})
        args: list[Any] = [token, int(ttl_s * 1000), running]
        for index in indices:
            args += [index, "1" if index in low_shots else "0"]
        reply = self._claim(
            keys=[
                self.key(sweep_id, "meta"),
                self.key(sweep_id, "terminal"),
                keys.queued(sweep_id, queue),
                self.key(sweep_id, "running"),
                self.key(sweep_id, "attempts"),
                self.key(sweep_id, "stage"),
                *[keys.lease(sweep_id, index) for index in indices],
            ],
            args=args,
        )
        return [
            (_CLAIMS[outcome], int(attempt)) for outcome, attempt in zip(reply[::2], reply[1::2], strict=True)
        ]

    def refresh_leases(self, leases: list[tuple[str, int, str]], ttl_s: float) -> None:
        """Refresh many ``(sweep_id, index, token)`` leases in one script call."""
        if leases:
            self._refresh(
                keys=[keys.lease(sweep_id, index) for sweep_id, index, _ in leases],
                args=[int(ttl_s * 1000), *[token for _, _, token in leases]],
            )

    def record(
        self,
        sweep_id: str,
        index: int,
        experiment_id: str,
        row: dict[str, Any],
        *,
        status: str,
        final: bool,
        lease_token: str = "",
        cost: float | None = None,
    ) -> bool:
        """Hand a result row to Redis durably; ``final`` rows count once. Returns True if recorded."""
        return self.record_many(
            sweep_id, [Record(index, experiment_id, row, status, final, lease_token, cost)]
        )[0]

    def record_many(self, sweep_id: str, records: list[Record]) -> list[bool]:
        """:meth:`record` for each of ``records``, in one script call (each as if alone)."""
        if not records:
            return []
        args: list[Any] = []
        for rec in records:
            args += [
                rec.index,
                rec.status,
                rec.experiment_id,
                json.dumps(rec.row, default=str),
                rec.lease_token,
                rec.cost if rec.cost is not None else 0,
                "1" if rec.final else "0",
                rec.summary if rec.summary is not None else observation(rec.row),
            ]
        recorded = self._record(
            keys=[
                self.key(sweep_id, "terminal"),
                self.key(sweep_id, "meta"),
                self.key(sweep_id, "results"),
                keys.DONE,
                self.key(sweep_id, "running"),
                self.key(sweep_id, "obs"),
                self.key(sweep_id, "attempts"),
                *[keys.lease(sweep_id, rec.index) for rec in records],
            ],
            args=args,
        )
        return [bool(done) for done in recorded]

    def release(self, sweep_id: str, queue: str, index: int, token: str) -> None:
        """Give an experiment back without a result, to a message that retries it (sent next).

        Until that message starts, the experiment is queued: were it lost, the coordinator's
        reconcile step finds a queued experiment without a message and puts it back to pending.
        """
        self._release(
            keys=[
                self.key(sweep_id, "running"),
                self.key(sweep_id, "attempts"),
                keys.lease(sweep_id, index),
                keys.queued(sweep_id, queue),
            ],
            args=[index, token],
        )

    # -- registering and steering sweeps ------------------------------------------------------------

    def register(self, sweep_id: str, meta: dict[str, Any]) -> None:
        """Start a sweep afresh: drop whatever an earlier run of it left, then write its ``meta``."""
        pipe = self._r.pipeline(transaction=True)
        stale = self.sweep_keys(sweep_id)
        if stale:
            pipe.delete(*stale)
        pipe.hset(self.key(sweep_id, "meta"), mapping=meta)
        pipe.execute()

    def serve(self, sweep_id: str) -> None:
        """Ask the coordinators to serve the sweep (and wake an idle one)."""
        pipe = self._r.pipeline(transaction=True)
        pipe.sadd(keys.SWEEPS, sweep_id)
        pipe.rpush(keys.WAKE, sweep_id)
        pipe.expire(keys.WAKE, 60)
        pipe.execute()

    def wait_for_sweeps(self, seconds: float) -> bool:
        """Block until a sweep is served (see :meth:`serve`) or ``seconds`` pass: an idle
        coordinator then starts a new sweep at once instead of at its next poll. True if one was."""
        # BLPOP's 0 would wait forever
        return seconds > 0 and self._r.blpop([keys.WAKE], timeout=seconds) is not None

    def served(self) -> set[str]:
        return set(self._r.smembers(keys.SWEEPS))

    def sweep_ids(self) -> list[str]:
        """Every sweep this broker knows, served or finished."""
        return sorted({keys.sweep_of(k) for k in self._r.scan_iter(keys.sweep("*", "meta"))})

    def transition(self, sweep_id: str, new: Lifecycle, *, allowed: frozenset[str], **fields: Any) -> bool:
        """Set the state to ``new`` if it is one of ``allowed`` now (atomic); True if it changed."""
        args = [new.value, json.dumps(sorted(allowed)), json.dumps({k: str(v) for k, v in fields.items()})]
        return bool(self._transition(keys=[self.key(sweep_id, "meta")], args=args))

    def counts(self, sweep_id: str) -> dict[str, int]:
        """Experiments pending (materialised only), queued and running now (beside the counters in
        ``meta``)."""
        pipe = self._r.pipeline(transaction=False)
        for q in RESOURCE_QUEUES:
            pipe.zcard(self.pending_key(sweep_id, q))
        for q in RESOURCE_QUEUES:
            pipe.scard(keys.queued(sweep_id, q))
        pipe.hlen(self.key(sweep_id, "running"))
        values = pipe.execute()
        n = len(RESOURCE_QUEUES)
        return {"pending": sum(values[:n]), "queued": sum(values[n : 2 * n]), "running": int(values[-1])}

    def optimizer(self) -> OptimizerStore:
        """What the optimizer reads and writes, on the same connection."""
        return OptimizerStore(self._r)

    def pruning(self) -> PruningStore:
        """Early stopping decided at each report (per-step values, the share cap), same connection."""
        from orchestrator.store.pruning import PruningStore

        return PruningStore(self._r)

    def code(self) -> CodeStore:
        """The projects' code archives, stored once per hash (see :mod:`orchestrator.store.code`)."""
        from orchestrator.store.code import CodeStore

        return CodeStore(self._r)

    def budget_ledger(self) -> BudgetLedger:
        from orchestrator.store.budget import BudgetLedger

        return BudgetLedger(self._r)

    def braket_ledgers(self) -> BraketLedgers:
        """Budgets, submission records, concurrency slots and token buckets of managed Braket work,
        on the same server (a bytes client: the ledgers decode themselves)."""
        from orchestrator.store.ledgers import BraketLedgers

        return BraketLedgers(bytes_client(self._r))

    # -- what a worker does around a run --------------------------------------------------------------

    def pause_on_resource(self, sweep_id: str, queue: str, index: int, token: str, reason: str) -> bool:
        """Give the experiment back (first in line) and pause the sweep, announcing it once.

        Returns True if this call paused the sweep (others that hit the same limit only give
        their experiment back).
        """
        paused = bool(
            self._pause(
                keys=[
                    self.key(sweep_id, "running"),
                    self.key(sweep_id, "attempts"),
                    keys.lease(sweep_id, index),
                    self.pending_key(sweep_id, queue),
                    self.key(sweep_id, "meta"),
                ],
                args=[index, token, reason],
            )
        )
        if paused:
            self.event(sweep_id, "alert", f"sweep paused: {reason}")
        return paused

    def give_back(self, sweep_id: str, queue: str, index: int, token: str) -> None:
        """Return an experiment this worker cannot run now to pending, first in line, for another
        worker (its attempt is returned too; a finished one is never re-added)."""
        self._give_back(
            keys=[
                self.key(sweep_id, "running"),
                self.key(sweep_id, "attempts"),
                keys.lease(sweep_id, index),
                self.pending_key(sweep_id, queue),
                self.key(sweep_id, "terminal"),
            ],
            args=[index, token],
        )

    def report_curve(self, sweep_id: str, experiment_id: str, curve: list[float]) -> bool:
        """Keep a running experiment's intermediate values; True if the optimizer asked it to stop."""
        pipe = self._r.pipeline(transaction=False)
        pipe.hset(self.key(sweep_id, "partials"), experiment_id, json.dumps(curve))
        pipe.sismember(self.key(sweep_id, "stop"), experiment_id)
        return bool(pipe.execute()[1])

    def forget_curve(self, sweep_id: str, experiment_id: str) -> None:
        self._r.hdel(self.key(sweep_id, "partials"), experiment_id)

    def record_partial(
        self, sweep_id: str, index: int, experiment_id: str, row: dict[str, Any], token: str
    ) -> None:
        """Keep a low-shot run's row (not final) and mark its stage done for the optimizer."""
        self.record(sweep_id, index, experiment_id, row, status="partial", final=False, lease_token=token)
        self._r.hset(
            self.key(sweep_id, "stage"), index, "low_done"
        )  # after the row: a crash reruns the stage

    # -- what a coordinator does ------------------------------------------------------------------------

    def snapshot(
        self, served: list[tuple[str, tuple[str, ...]]], fields: tuple[str, ...]
    ) -> tuple[set[str], dict[str, dict[str, Any]]]:
        """In one round trip: the sweeps to serve, and per ``(sweep, queues)`` of ``served`` its
        ``meta`` ``fields``, ``n_terminal``, ``n_running``, ``n_picks`` (optimizer picks to
        materialise), and ``queued`` and ``pending`` counts per queue."""
        pipe = self._r.pipeline(transaction=False)
        pipe.smembers(keys.SWEEPS)
        for sweep_id, queues in served:
            pipe.hmget(self.key(sweep_id, "meta"), fields)
            pipe.hlen(self.key(sweep_id, "terminal"))
            pipe.hlen(self.key(sweep_id, "running"))
            pipe.zcard(self.key(sweep_id, "picks"))
            for queue in queues:
                pipe.scard(keys.queued(sweep_id, queue))
                pipe.zcard(keys.pending(sweep_id, queue))
        replies = iter(pipe.execute())
        members = set(next(replies))
        snapshots: dict[str, dict[str, Any]] = {}
        for sweep_id, queues in served:
            meta: dict[str, Any] = {k: v for k, v in zip(fields, next(replies), strict=True) if v is not None}
            meta["n_terminal"], meta["n_running"], meta["n_picks"] = (
                next(replies),
                next(replies),
                next(replies),
            )
            meta["queued"], meta["pending"] = {}, {}
            for queue in queues:
                meta["queued"][queue], meta["pending"][queue] = next(replies), next(replies)
            snapshots[sweep_id] = meta
        return members, snapshots

    def done_among(self, experiment_ids: list[str]) -> list[bool]:
        """Which of these experiments have a successful result in a sweep of this broker."""
        return [bool(x) for x in self._r.smismember(keys.DONE, experiment_ids)] if experiment_ids else []

    def any_done(self) -> bool:
        """Whether any experiment has a successful result on this broker."""
        return bool(self._r.exists(keys.DONE))

    def stop_starting(self, sweep_id: str) -> tuple[int, int]:
        """A cancelling sweep: drop its pending experiments; returns (running, terminal) counts."""
        pipe = self._r.pipeline(transaction=True)
        for queue in RESOURCE_QUEUES:
            pipe.delete(self.pending_key(sweep_id, queue))
        pipe.hset(self.key(sweep_id, "meta"), "fill_done", 1)
        pipe.hlen(self.key(sweep_id, "running"))
        pipe.hlen(self.key(sweep_id, "terminal"))
        *_, running, terminal = pipe.execute()
        return int(running), int(terminal)

    def count_never_started(self, sweep_id: str, n: int) -> None:
        self._r.hincrby(self.key(sweep_id, "meta"), "n_cancelled", n)

    def close(self, sweep_id: str, final: Lifecycle) -> None:
        """The sweep is over: final state, no longer served, lock released."""
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(self.key(sweep_id, "meta"), mapping={"state": final.value, "finished_at": time.time()})
        pipe.srem(keys.SWEEPS, sweep_id)
        pipe.delete(self.key(sweep_id, "coordinator"))
        pipe.execute()
        self.event(sweep_id, "info", f"sweep {final.value}")
