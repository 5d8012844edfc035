"""The experiments waiting to run, per sweep and queue, on the coordinator's side: the pending
sorted sets (best score first), the queued marks of those published and not started, and every
way back to pending (a failed publish, a previous coordinator, a lost worker, a lost message).

The pending sets hold the next few thousand experiments only: the rest of a sweep is the range
past its fill cursor (``meta.fill_cursor``, see :mod:`core.order`), materialised as the sets drain
(``materialize``, one script with the cursor's move).

A worker's claim takes an experiment out of "queued" (``SweepState.claim``); whatever comes back
goes first in line (score +inf): it was the best already.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

from core.protocol import RESOURCE_QUEUES
from orchestrator.store import keys
from orchestrator.store import scripts as lua


@dataclass(frozen=True, slots=True)
class Awaiting:
    """What must have a message in the broker: experiments published and not started, by queue,
    and the poll message (its keyword arguments) of every quantum task still running, by ARN."""

    queued: dict[str, set[int]]
    polls: dict[str, dict[str, Any]]


class PendingSets:
    """``pending:{queue}`` and ``queued:{queue}`` of every sweep (``SweepState.pending``)."""

    def __init__(self, client: redis.Redis) -> None:
        self._r = client
        self._take, self._orphan = client.register_script(lua.TAKE), client.register_script(lua.ORPHAN)
        self._requeue_lost = client.register_script(lua.REQUEUE_LOST)
        self._materialize = client.register_script(lua.MATERIALIZE)

    def materialize(
        self,
        sweep_id: str,
        cursor: int,
        new_cursor: int,
        done: bool,
        entries: list[tuple[str, str, int, int, float | None]],
        excluded: int = 0,
    ) -> int | None:
        """Materialise experiments and move the fill cursor from ``cursor`` to ``new_cursor``, in
        one step (see ``MATERIALIZE``). ``entries`` are ``(kind, queue, point, index, score)``,
        score None for an experiment reused from an earlier result. Returns how many entered the
        pending sets, or None if the cursor was not at ``cursor`` (another fill came first).
        ``excluded``: experiments of the points passed that constraints exclude (out of ``total``).
        """
        queues = sorted({queue for _, queue, *_ in entries})
        slot = {queue: 4 + n for n, queue in enumerate(queues)}  # Lua's KEYS are 1-based
        args: list[Any] = [cursor, new_cursor, int(done), excluded]
        for kind, queue, point, index, score in entries:
            args += [kind, slot[queue], point, index, "" if score is None else repr(float(score))]
        found = self._materialize(
            keys=[
                keys.sweep(sweep_id, "meta"),
                keys.sweep(sweep_id, "picked"),
                keys.sweep(sweep_id, "terminal"),
                *(keys.pending(sweep_id, q) for q in queues),
            ],
            args=args,
        )
        return None if int(found) < 0 else int(found)

    def sizes(self, sweep_id: str) -> dict[str, int]:
        """Experiments in each pending set."""
        pipe = self._r.pipeline(transaction=False)
        for queue in RESOURCE_QUEUES:
            pipe.zcard(keys.pending(sweep_id, queue))
        return dict(zip(RESOURCE_QUEUES, map(int, pipe.execute()), strict=True))

    def picked(self, sweep_id: str, points: np.ndarray) -> np.ndarray:
        """Which of ``points`` were materialised ahead of the cursor (as optimizer picks)."""
        if not len(points):
            return np.zeros(0, dtype=bool)
        found = self._r.smismember(keys.sweep(sweep_id, "picked"), points.tolist())
        return np.asarray(found, dtype=bool)

    def n_picked(self, sweep_id: str) -> int:
        return int(self._r.scard(keys.sweep(sweep_id, "picked")))

    def take_picks(self, sweep_id: str) -> dict[int, float]:
        """The optimizer's picks from its candidate pool, point -> score, taken out of Redis: lost
        in a crash before they are materialised, which only costs their place in line."""
        pipe = self._r.pipeline(transaction=True)
        pipe.zrange(keys.sweep(sweep_id, "picks"), 0, -1, withscores=True)
        pipe.delete(keys.sweep(sweep_id, "picks"))
        return {int(p): s for p, s in pipe.execute()[0]}

    def take(self, sweep_id: str, queue: str, n: int) -> list[tuple[str, float]]:
        """Move the best ``n`` pending experiments to "queued", in one round trip; with their scores."""
        if n <= 0:
            return []
        flat = self._take(keys=[keys.pending(sweep_id, queue), keys.queued(sweep_id, queue)], args=[n])
        return list(zip(flat[::2], map(float, flat[1::2]), strict=True))

    def untake(self, sweep_id: str, queue: str, taken: list[tuple[str, float]]) -> None:
        """Undo :meth:`take` (the publish failed)."""
        pipe = self._r.pipeline(transaction=True)
        pipe.srem(keys.queued(sweep_id, queue), *[m for m, _ in taken])
        pipe.zadd(keys.pending(sweep_id, queue), dict(taken))
        pipe.execute()

    def requeue_queued(self, sweep_id: str) -> None:
        """Give a previous coordinator's unstarted experiments back to the pending sets.

        It may have died between marking them queued and sending them. Those that did reach
        the broker run twice at most as *deliveries*: the worker's terminal check and lease
        make the second one a no-op.
        """
        for queue in RESOURCE_QUEUES:
            queued_key = keys.queued(sweep_id, queue)
            members = list(self._r.smembers(queued_key))
            if not members:
                continue
            terminal = self._r.hmget(keys.sweep(sweep_id, "terminal"), members)
            pipe = self._r.pipeline(transaction=True)
            pipe.delete(queued_key)
            unfinished = {str(m): float("inf") for m, t in zip(members, terminal, strict=True) if t is None}
            if unfinished:
                pipe.zadd(keys.pending(sweep_id, queue), unfinished)
            pipe.execute()

    def requeue_orphans(self, sweep_id: str, queue_of: Callable[[int], str]) -> int:
        """Put experiments whose worker died back to pending, at once (see ``ORPHAN``).

        Celery would redeliver their messages only after the visibility timeout (half an hour by
        default); when it does, the duplicate delivery finds them done or leased. Returns how many.
        """
        running = keys.sweep(sweep_id, "running")
        calls = [
            (
                [
                    running,
                    keys.sweep(sweep_id, "terminal"),
                    keys.lease(sweep_id, i),
                    keys.pending(sweep_id, queue_of(i)),
                ],
                [i],
            )
            for i in (int(i) for i in self._r.hkeys(running))
        ]
        return sum(int(n) for n in lua.run_batched(self._r, self._orphan, calls))

    def requeue_lost(self, sweep_id: str, queue: str, indices: list[int]) -> int:
        """Put experiments whose message was lost back to pending (see ``REQUEUE_LOST``); how many."""
        if not indices:
            return 0
        keys_ = [
            keys.queued(sweep_id, queue),
            keys.pending(sweep_id, queue),
            keys.sweep(sweep_id, "terminal"),
        ]
        return int(self._requeue_lost(keys=keys_, args=indices))

    def awaiting(self, sweep_id: str) -> Awaiting:
        """What must have a message in the broker now (see :class:`Awaiting`), in one round trip."""
        pipe = self._r.pipeline(transaction=True)
        for queue in RESOURCE_QUEUES:
            pipe.smembers(keys.queued(sweep_id, queue))
        pipe.hgetall(keys.sweep(sweep_id, "running"))
        pipe.hgetall(keys.sweep(sweep_id, "tasks"))
        *queued, running, tasks = pipe.execute()
        polls = {}
        for index, raw in running.items():
            arn = json.loads(raw).get("task_arn")
            task = json.loads(tasks.get(index, "{}"))
            if arn and task.get("arn") == arn and task.get("poll"):
                polls[arn] = task["poll"]
        return Awaiting(
            {q: {int(i) for i in members} for q, members in zip(RESOURCE_QUEUES, queued, strict=True)}, polls
        )
