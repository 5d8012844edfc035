"""Sweep state in Redis: key layout and the few operations that must be atomic.

Keys (prefix ``orch:``):

* ``sweeps``                      set of sweep ids a coordinator should serve
* ``sweep:{id}:meta``             hash: state, config, counters (n_completed, n_failed, ...), cost
* ``sweep:{id}:pending:{queue}``  sorted set of experiment indices, score = priority (higher first)
* ``sweep:{id}:queued:{queue}``   set of experiment indices published but not yet started
* ``sweep:{id}:running``          hash index -> JSON {host, since}
* ``sweep:{id}:terminal``         hash index -> final status (written once: the idempotency anchor)
* ``sweep:{id}:attempts``         hash index -> deliveries so far
* ``sweep:{id}:results``          stream of result rows, drained by the coordinator into Parquet
* ``sweep:{id}:events``           list of alerts and notable events (newest first, capped)
* ``sweep:{id}:obs``              hash index -> compact finished result, what the optimizer reads
* ``sweep:{id}:added``            hash point -> parameters of refinement points the optimizer added
* ``sweep:{id}:stage``            hash index -> low_done | full | stopped (shots as a budget)
* ``sweep:{id}:partials``         hash experiment id -> intermediate values of a running experiment
* ``sweep:{id}:stop``             set of running experiment ids the median rule stops
* ``sweep:{id}:lease:{index}``    held while an experiment runs; refreshed by a heartbeat
* ``done``                        set of experiment ids with a successful result, across sweeps
* ``workers``                     hash hostname -> JSON {queues, concurrency, seen}
* ``held:{hostname}``             sorted set of delivery tags the worker received, by time: a lost
                                  worker's messages are restored at once, not after the visibility timeout
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import redis

PREFIX = "orch:"
UNACKED_KEY = "unacked"  # kombu's Redis hash of delivered, unacked messages (its default name)
HOLD_GRACE_S = 10.0  # a noted tag is checked against UNACKED_KEY only after this long
#: the queues experiments run on (plus ``control`` for the beat task); one pending set each
RESOURCE_QUEUES = ("local_cpu", "braket_sim", "braket_qpu")
RESULTS_GROUP = "writer"

# Record a result exactly once. The terminal hash entry is the anchor: the first writer wins,
# later deliveries of the same experiment change nothing (no second row, no double count).
_RECORD = """
local terminal, meta, stream, done, running, lease, obs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local index, status, exp_id, payload, token, cost, final, summary = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local recorded = 0
if final == '1' then
  recorded = redis.call('HSETNX', terminal, index, status)
else
  recorded = 1
end
if recorded == 1 then
  redis.call('XADD', stream, '*', 'row', payload)
  if final == '1' then
    redis.call('HINCRBY', meta, 'n_' .. status, 1)
    if tonumber(cost) and tonumber(cost) > 0 then redis.call('HINCRBYFLOAT', meta, 'cost', cost) end
    if status == 'completed' then redis.call('SADD', done, exp_id) end
  end
  redis.call('HSET', obs, index, summary)
end
redis.call('HDEL', running, index)
if redis.call('GET', lease) == token then redis.call('DEL', lease) end
return recorded
"""

# Everything a worker checks and marks before it runs an experiment, in one round trip (the
# same steps, in the same order, as separate commands would take): sweep state, terminal
# result, lease (SET NX PX), then out of "queued", into "running", one more attempt.
_CLAIM = """
local meta, terminal, lease, queued, running, attempts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local index, token, ttl_ms, running_json = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local state = redis.call('HGET', meta, 'state')
if not state then return {'unknown-sweep', 0} end
if state == 'cancelled' or state == 'cancelling' or state == 'timed_out' then
  redis.call('SREM', queued, index)
  return {'cancelled', 0}
end
if redis.call('HEXISTS', terminal, index) == 1 then
  redis.call('SREM', queued, index)
  return {'already-done', 0}
end
if not redis.call('SET', lease, token, 'NX', 'PX', ttl_ms) then return {'leased', 0} end
redis.call('SREM', queued, index)
redis.call('HSET', running, index, running_json)
return {'run', redis.call('HINCRBY', attempts, index, 1)}
"""

# An experiment marked running whose lease is gone: its worker died (a live one keeps the lease
# alive). Back to pending, first in line, unless it finished meanwhile or is a managed quantum
# task (those are polled and hold no lease; re-running one would submit it again).
_ORPHAN = """
local running, terminal, lease, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local index = ARGV[1]
local info = redis.call('HGET', running, index)
if not info or string.find(info, 'task_arn', 1, true) then return 0 end
if redis.call('EXISTS', lease) == 1 then return 0 end
redis.call('HDEL', running, index)
if redis.call('HEXISTS', terminal, index) == 1 then return 0 end
redis.call('ZADD', pending, 'inf', index)
return 1
"""

# An experiment given back without a result: not a lost delivery, so its attempt is returned too.
_RELEASE = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
return 1
"""

_REFRESH_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class Record(NamedTuple):
    """One result row for :meth:`SweepState.record_many`."""

    index: int
    experiment_id: str
    row: dict[str, Any]
    status: str
    final: bool = True
    lease_token: str = ""
    cost: float | None = None


def observation(row: dict[str, Any]) -> str:
    """The compact form of a result row the optimizer reads (``sweep:{id}:obs``), as JSON."""

    def as_dict(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else (value or {})

    extra = as_dict(row.get("extra"))
    return json.dumps(
        {
            "experiment_id": row.get("experiment_id"),
            "index": row.get("index"),
            # a partial (low-shot) run is a completed run at lower fidelity, to the model
            "status": "completed" if row.get("status") == "partial" else row.get("status"),
            "parameters": as_dict(row.get("parameters")),
            "metrics": as_dict(row.get("metrics")),
            "extra": {
                k: extra[k] for k in ("intermediate", "shots", "shot_fraction", "variance") if k in extra
            },
        },
        default=str,
    )


def connect(url: str, *, decode: bool = True) -> redis.Redis:
    """A Redis client for ``url`` (``redis://``, ``rediss://`` or ``redis+socket://``)."""
    if url.startswith("redis+socket://"):
        return redis.Redis(
            unix_socket_path=url[len("redis+socket://") :].split("?")[0], decode_responses=decode
        )
    return redis.Redis.from_url(url, decode_responses=decode)


class SweepState:
    """Typed access to one deployment's sweep state in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._record = client.register_script(_RECORD)
        self._refresh = client.register_script(_REFRESH_LEASE)
        self._claim = client.register_script(_CLAIM)
        self._orphan = client.register_script(_ORPHAN)
        self._release = client.register_script(_RELEASE)

    # -- keys -------------------------------------------------------------------------------------

    @staticmethod
    def key(sweep_id: str, part: str) -> str:
        return f"{PREFIX}sweep:{sweep_id}:{part}"

    def pending_key(self, sweep_id: str, queue: str) -> str:
        return self.key(sweep_id, f"pending:{queue}")

    def sweep_keys(self, sweep_id: str) -> list[str]:
        return list(self.r.scan_iter(f"{PREFIX}sweep:{sweep_id}:*"))

    # -- sweep metadata ---------------------------------------------------------------------------

    def meta(self, sweep_id: str) -> dict[str, str]:
        return self.r.hgetall(self.key(sweep_id, "meta"))

    def exists(self, sweep_id: str) -> bool:
        return bool(self.r.exists(self.key(sweep_id, "meta")))

    def state(self, sweep_id: str) -> str | None:
        return self.r.hget(self.key(sweep_id, "meta"), "state")

    def set_state(self, sweep_id: str, state: str, **fields: Any) -> None:
        self.r.hset(
            self.key(sweep_id, "meta"), mapping={"state": state, **{k: str(v) for k, v in fields.items()}}
        )

    def config_json(self, sweep_id: str) -> str | None:
        return self.r.hget(self.key(sweep_id, "meta"), "config")

    def event(self, sweep_id: str, level: str, message: str) -> None:
        entry = json.dumps({"ts": time.time(), "level": level, "message": message})
        pipe = self.r.pipeline()
        pipe.lpush(self.key(sweep_id, "events"), entry)
        pipe.ltrim(self.key(sweep_id, "events"), 0, 199)
        pipe.execute()

    def events(self, sweep_id: str, limit: int = 20) -> list[dict[str, Any]]:
        return [json.loads(e) for e in self.r.lrange(self.key(sweep_id, "events"), 0, limit - 1)]

    # -- worker side ------------------------------------------------------------------------------

    def lease_key(self, sweep_id: str, index: int) -> str:
        return self.key(sweep_id, f"lease:{index}")

    def is_terminal(self, sweep_id: str, index: int) -> bool:
        return bool(self.r.hexists(self.key(sweep_id, "terminal"), index))

    def queued_key(self, sweep_id: str, queue: str) -> str:
        return self.key(sweep_id, f"queued:{queue}")

    def claim(
        self, sweep_id: str, queue: str, index: int, token: str, ttl_s: float, host: str
    ) -> tuple[str, int]:
        """Check and start an experiment in one round trip: ``("run", attempt)`` if this delivery
        should run it, else ``(reason, 0)`` with reason ``unknown-sweep``, ``cancelled``,
        ``already-done`` or ``leased`` (another delivery holds the lease)."""
        return self.claim_many(sweep_id, queue, [index], token, ttl_s, host)[0]

    def claim_many(
        self, sweep_id: str, queue: str, indices: list[int], token: str, ttl_s: float, host: str
    ) -> list[tuple[str, int]]:
        """:meth:`claim` for each of ``indices`` (a batch message), in one round trip."""
        running = json.dumps({"host": host, "since": time.time()})
        calls = [
            (
                [
                    self.key(sweep_id, "meta"),
                    self.key(sweep_id, "terminal"),
                    self.lease_key(sweep_id, index),
                    self.queued_key(sweep_id, queue),
                    self.key(sweep_id, "running"),
                    self.key(sweep_id, "attempts"),
                ],
                [index, token, int(ttl_s * 1000), running],
            )
            for index in indices
        ]
        return [
            (outcome.decode() if isinstance(outcome, bytes) else str(outcome), int(attempt))
            for outcome, attempt in self._run(self._claim, calls)
        ]

    def requeue_orphans(self, sweep_id: str, queue_of: Callable[[int], str]) -> int:
        """Put experiments whose worker died back to pending, at once (see ``_ORPHAN``).

        Celery would redeliver their messages only after the visibility timeout (half an hour by
        default); when it does, the duplicate delivery finds them done or leased. Returns how many.
        """
        indices = [int(i) for i in self.r.hkeys(self.key(sweep_id, "running"))]
        calls = [
            (
                [
                    self.key(sweep_id, "running"),
                    self.key(sweep_id, "terminal"),
                    self.lease_key(sweep_id, i),
                    self.pending_key(sweep_id, queue_of(i)),
                ],
                [i],
            )
            for i in indices
        ]
        return sum(int(n) for n in self._run(self._orphan, calls))

    def requeue_queued(self, sweep_id: str) -> None:
        """Give a previous coordinator's unstarted experiments back to the pending sets.

        It may have died between marking them queued and sending them. Those that did reach
        the broker run twice at most as *deliveries*: the worker's terminal check and lease
        make the second one a no-op. They go first (score +inf): they were the best already.
        """
        for queue in RESOURCE_QUEUES:
            queued_key = self.queued_key(sweep_id, queue)
            members = list(self.r.smembers(queued_key))
            if not members:
                continue
            terminal = self.r.hmget(self.key(sweep_id, "terminal"), members)
            pipe = self.r.pipeline(transaction=True)
            pipe.delete(queued_key)
            unfinished = {str(m): float("inf") for m, t in zip(members, terminal, strict=True) if t is None}
            if unfinished:
                pipe.zadd(self.pending_key(sweep_id, queue), unfinished)
            pipe.execute()

    def refresh_leases(self, leases: list[tuple[str, int, str]], ttl_s: float) -> None:
        """Refresh many ``(sweep_id, index, token)`` leases in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        for sweep_id, index, token in leases:
            self._refresh(
                keys=[self.lease_key(sweep_id, index)], args=[token, int(ttl_s * 1000)], client=pipe
            )
        pipe.execute()

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
        """:meth:`record` for each of ``records``, in one round trip (each one atomic on its own)."""
        calls = [
            (
                [
                    self.key(sweep_id, "terminal"),
                    self.key(sweep_id, "meta"),
                    self.key(sweep_id, "results"),
                    f"{PREFIX}done",
                    self.key(sweep_id, "running"),
                    self.lease_key(sweep_id, rec.index),
                    self.key(sweep_id, "obs"),
                ],
                [
                    rec.index,
                    rec.status,
                    rec.experiment_id,
                    json.dumps(rec.row, default=str),
                    rec.lease_token,
                    rec.cost if rec.cost is not None else 0,
                    "1" if rec.final else "0",
                    observation(rec.row),
                ],
            )
            for rec in records
        ]
        return [bool(done) for done in self._run(self._record, calls)]

    def _run(self, script: Any, calls: list[tuple[list[Any], list[Any]]]) -> list[Any]:
        """Run ``script`` once per ``(keys, args)``: one call directly (one round trip), more in a
        pipeline (redis-py checks its scripts are loaded first: two round trips, whatever the count)."""
        if len(calls) <= 1:
            return [script(keys=keys, args=args) for keys, args in calls]
        pipe = self.r.pipeline(transaction=False)
        for keys, args in calls:
            script(keys=keys, args=args, client=pipe)
        return pipe.execute()

    def observe(self, sweep_id: str, rows: list[dict[str, Any]]) -> None:
        """Add finished rows (e.g. reused from an earlier sweep) to what the optimizer sees."""
        if rows:
            self.r.hset(
                self.key(sweep_id, "obs"), mapping={str(row["index"]): observation(row) for row in rows}
            )

    def release(self, sweep_id: str, index: int, token: str) -> None:
        """Give an experiment back without a result (retry later, or the sweep paused)."""
        self._release(
            keys=[
                self.key(sweep_id, "running"),
                self.key(sweep_id, "attempts"),
                self.lease_key(sweep_id, index),
            ],
            args=[index, token],
        )

    # -- workers registry -------------------------------------------------------------------------

    def heartbeat_worker(self, hostname: str, queues: list[str], concurrency: int) -> None:
        """Say the worker is alive, and forget the noted delivery tags it has acked since."""
        key = self.held_key(hostname)
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(
            f"{PREFIX}workers",
            hostname,
            json.dumps({"queues": queues, "concurrency": concurrency, "seen": time.time()}),
        )
        pipe.zrangebyscore(key, "-inf", time.time() - HOLD_GRACE_S)
        old = pipe.execute()[1]
        if old:
            pipe = self.r.pipeline(transaction=False)
            for tag in old:
                pipe.hexists(UNACKED_KEY, tag)
            if acked := [tag for tag, held in zip(old, pipe.execute(), strict=True) if not held]:
                self.r.zrem(key, *acked)

    def held_key(self, hostname: str) -> str:
        return f"{PREFIX}held:{hostname}"

    def hold(self, hostname: str, tag: str) -> None:
        """Note that a worker received the message ``tag`` (restored if the worker is lost)."""
        self.r.zadd(self.held_key(hostname), {tag: time.time()})

    def forget_worker(self, hostname: str) -> None:
        pipe = self.r.pipeline(transaction=False)
        pipe.hdel(f"{PREFIX}workers", hostname)
        pipe.delete(self.held_key(hostname))
        pipe.execute()

    def lost_workers(self, silent_s: float) -> dict[str, list[str]]:
        """Workers silent for ``silent_s`` seconds, with the delivery tags they held."""
        now = time.time()
        lost = [host for host, info in self._workers().items() if now - info["seen"] > silent_s]
        pipe = self.r.pipeline(transaction=False)
        for host in lost:
            pipe.zrange(self.held_key(host), 0, -1)
        return dict(zip(lost, pipe.execute(), strict=True)) if lost else {}

    def coordinator_alive(self, max_age_s: float = 10.0) -> bool:
        """True if some coordinator's heartbeat (in ``coordinators``) is recent."""
        now = time.time()
        return any(now - float(ts) < max_age_s for ts in self.r.hgetall(f"{PREFIX}coordinators").values())

    def live_workers(self, max_age_s: float = 20.0) -> dict[str, dict[str, Any]]:
        now = time.time()
        return {host: info for host, info in self._workers().items() if now - info["seen"] <= max_age_s}

    def _workers(self) -> dict[str, dict[str, Any]]:
        """Every registered worker: hostname -> {queues, concurrency, seen}."""
        return {host: json.loads(raw) for host, raw in self.r.hgetall(f"{PREFIX}workers").items()}

    def consumers(self, queue: str) -> int:
        return sum(w["concurrency"] for w in self.live_workers().values() if queue in w["queues"])
