"""Who is alive in a deployment: workers (their queues, concurrency and the messages they hold)
and coordinators, each by its heartbeat, with the lock by which one coordinator serves a sweep."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from orchestrator.store import keys
from orchestrator.store import scripts as lua

HOLD_GRACE_S = 10.0  # a noted tag is checked against keys.UNACKED only after this long


class Registry:
    """The deployment's workers and coordinators (``orch:workers``, ``orch:held:*``,
    ``orch:coordinators``, and each sweep's ``coordinator`` lock)."""

    def __init__(self, client: redis.Redis) -> None:
        self._r = client
        self._lock, self._unlock = client.register_script(lua.LOCK), client.register_script(lua.UNLOCK)

    # -- workers ----------------------------------------------------------------------------------

    def beat(self, hostname: str, queues: list[str], concurrency: int, every: float, **details: Any) -> None:
        """Say the worker is alive (and beats ``every`` seconds), and forget the noted delivery tags
        it has acked since. ``details`` go with it (the machine's name, the code it has cached)."""
        key = keys.held(hostname)
        pipe = self._r.pipeline(transaction=False)
        info = {**details, "queues": queues, "concurrency": concurrency, "seen": time.time(), "every": every}
        pipe.hset(keys.WORKERS, hostname, json.dumps(info))
        pipe.zrangebyscore(key, "-inf", time.time() - HOLD_GRACE_S)
        old = pipe.execute()[1]
        if old:
            pipe = self._r.pipeline(transaction=False)
            for tag in old:
                pipe.hexists(keys.UNACKED, tag)
            if acked := [tag for tag, held in zip(old, pipe.execute(), strict=True) if not held]:
                self._r.zrem(key, *acked)

    def hold(self, hostname: str, *tags: str) -> None:
        """Note that a worker received the messages ``tags`` (restored if the worker is lost)."""
        now = time.time()
        self._r.zadd(keys.held(hostname), dict.fromkeys(tags, now))

    def forget(self, hostname: str) -> None:
        pipe = self._r.pipeline(transaction=False)
        pipe.hdel(keys.WORKERS, hostname)
        pipe.delete(keys.held(hostname))
        pipe.execute()

    def lost(self, silent_s: float) -> dict[str, list[str]]:
        """Workers silent for ``silent_s`` seconds, with the delivery tags they held.

        Never fewer than three of the worker's own heartbeats: a live worker judged lost would
        have its messages delivered a second time and drop out of the consumer count.
        """
        now = time.time()
        lost = [
            host
            for host, info in self._workers().items()
            if now - info["seen"] > max(silent_s, 3 * info.get("every", 5.0))
        ]
        pipe = self._r.pipeline(transaction=False)
        for host in lost:
            pipe.zrange(keys.held(host), 0, -1)
        return dict(zip(lost, pipe.execute(), strict=True)) if lost else {}

    def live(self, max_age_s: float = 20.0) -> dict[str, dict[str, Any]]:
        """Workers heard from in the last ``max_age_s`` seconds: hostname -> {queues, concurrency,
        seen, host, code}."""
        now = time.time()
        return {host: info for host, info in self._workers().items() if now - info["seen"] <= max_age_s}

    def consumers(self, queues: tuple[str, ...]) -> dict[str, int]:
        """Live worker processes consuming each of ``queues`` (one read of the registry)."""
        live = self.live().values()
        return {queue: sum(w["concurrency"] for w in live if queue in w["queues"]) for queue in queues}

    def _workers(self) -> dict[str, dict[str, Any]]:
        return {host: json.loads(raw) for host, raw in self._r.hgetall(keys.WORKERS).items()}

    # -- coordinators -----------------------------------------------------------------------------

    def coordinator_beat(self, token: str) -> None:
        self._r.hset(keys.COORDINATORS, token, time.time())

    def lock_sweep(self, sweep_id: str, token: str, ttl_s: int) -> bool:
        """Take or keep the sweep's coordinator lock; False if another coordinator holds it."""
        return bool(self._lock(keys=[keys.sweep(sweep_id, "coordinator")], args=[token, ttl_s]))

    def forget_coordinator(self, token: str, sweep_ids: list[str]) -> None:
        """A coordinator stops: its locks of ``sweep_ids`` go, so another may take them at once."""
        for sweep_id in sweep_ids:
            self._unlock(keys=[keys.sweep(sweep_id, "coordinator")], args=[token])
        self._r.hdel(keys.COORDINATORS, token)

    def coordinator_alive(self, max_age_s: float = 10.0) -> bool:
        """True if some coordinator's heartbeat is recent."""
        now = time.time()
        return any(now - float(ts) < max_age_s for ts in self._r.hgetall(keys.COORDINATORS).values())
