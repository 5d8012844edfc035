"""What the optimizer reads and writes of a live sweep (see :mod:`orchestrator.optimizer.service`).

Two refits at once (two beats by mistake) cannot corrupt priorities: :meth:`OptimizerStore.refit_lock`
keeps the second out, and :meth:`rescore` (``ZADD XX``) only changes the score of experiments still
pending, never re-adding one that was published meanwhile.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from core.expectations import is_violation
from core.protocol import RESOURCE_QUEUES
from orchestrator.store import keys

HISTORY = 100  # refit summaries kept per sweep

# A fidelity ladder's promotion, recorded in the same step as its experiments are added, so a
# point is never promoted to a rung twice (two refits, two coordinators, a restart between them).
# KEYS: the ladder record, added, meta, pending:{queue}. ARGV: record field, point, parameters
# (JSON), score, then the experiment indices. Returns 1 when added, 0 when promoted before.
_PROMOTE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
for i = 5, #ARGV do redis.call('ZADD', KEYS[4], 'NX', ARGV[4], ARGV[i]) end
redis.call('HINCRBY', KEYS[3], 'total', #ARGV - 4)
return 1
"""


def observation(row: dict[str, Any], **parsed: dict[str, Any]) -> str:
    """The compact form of a result row the optimizer reads (``sweep:{id}:obs``), as JSON.

    ``parsed`` may give the row's ``parameters``, ``metrics`` and ``extra`` as the dicts they
    were before the row made them JSON text: not parsed back on every run.
    """

    def as_dict(name: str) -> Any:
        if name in parsed:
            return parsed[name] or {}
        value = row.get(name)
        return json.loads(value) if isinstance(value, str) else (value or {})

    extra = as_dict("extra")
    return json.dumps(
        {
            "experiment_id": row.get("experiment_id"),
            "index": row.get("index"),
            "project": row.get("project_name"),
            # a partial (low-shot) run is a completed run at lower fidelity, to the model
            "status": "completed" if row.get("status") == "partial" else row.get("status"),
            "parameters": as_dict("parameters"),
            "metrics": as_dict("metrics"),
            "validation": row.get("validation"),  # the optimizer may leave violations out
            "extra": {
                k: extra[k] for k in ("intermediate", "shots", "shot_fraction", "variance") if k in extra
            },
        },
        default=str,
    )


class OptimizerStore:
    """The optimizer's view of one deployment's sweeps."""

    def __init__(self, client: redis.Redis) -> None:
        self._r = client
        self._promote = client.register_script(_PROMOTE)

    @contextmanager
    def refit_lock(self, sweep_id: str, ttl_s: int = 120) -> Iterator[bool]:
        """Hold the sweep's refit lock for the block; yields False if another refit holds it."""
        key, token = keys.sweep(sweep_id, "optimizer:lock"), uuid.uuid4().hex
        held = bool(self._r.set(key, token, nx=True, ex=ttl_s))
        try:
            yield held
        finally:
            if held and self._r.get(key) == token:
                self._r.delete(key)

    # -- reads ------------------------------------------------------------------------------------

    def observations(self, sweep_id: str, *, violations: bool = True) -> list[dict[str, Any]]:
        """The sweep's finished results in the optimizer's shape (the ``obs`` hash).

        Args:
            violations: include the runs whose validation verdict is a violation (a metric
                outside the bounds of the sweep's ``validation:`` section).
        """
        found = [json.loads(v) for v in self._r.hvals(keys.sweep(sweep_id, "obs"))]
        return found if violations else [o for o in found if not is_violation(o.get("validation"))]

    def observation(self, sweep_id: str, index: int) -> dict[str, Any] | None:
        raw = self._r.hget(keys.sweep(sweep_id, "obs"), index)
        return json.loads(raw) if raw else None

    def observed(self, sweep_id: str) -> set[int]:
        return {int(i) for i in self._r.hkeys(keys.sweep(sweep_id, "obs"))}

    def in_stage(self, sweep_id: str, stage: str) -> list[int]:
        """Experiments at ``stage`` of shots as a budget (``low_done``, ``full``, ``stopped``)."""
        return [int(i) for i, s in self._r.hgetall(keys.sweep(sweep_id, "stage")).items() if s == stage]

    def curves(self, sweep_id: str) -> dict[str, list[Any]]:
        """Intermediate values of running experiments: experiment id -> curve."""
        return {eid: json.loads(v) for eid, v in self._r.hgetall(keys.sweep(sweep_id, "partials")).items()}

    def added(self, sweep_id: str) -> dict[int, dict[str, Any]]:
        return {int(k): json.loads(v) for k, v in self._r.hgetall(keys.sweep(sweep_id, "added")).items()}

    def added_point(self, sweep_id: str, point: int) -> dict[str, Any] | None:
        raw = self._r.hget(keys.sweep(sweep_id, "added"), point)
        return json.loads(raw) if raw else None

    def pending(self, sweep_id: str) -> dict[str, list[str]]:
        """Pending experiment indices (as stored) per queue."""
        pipe = self._r.pipeline(transaction=False)
        for queue in RESOURCE_QUEUES:
            pipe.zrange(keys.pending(sweep_id, queue), 0, -1)
        return dict(zip(RESOURCE_QUEUES, pipe.execute(), strict=True))

    def top_pending(self, sweep_id: str, count: int) -> list[int]:
        """The ``count`` pending experiments the optimizer ranks first, over every queue."""
        pipe = self._r.pipeline(transaction=False)
        for queue in RESOURCE_QUEUES:
            pipe.zrevrange(keys.pending(sweep_id, queue), 0, count - 1, withscores=True)
        ranked = sorted((pair for pairs in pipe.execute() for pair in pairs), key=lambda p: -p[1])
        return [int(member) for member, _ in ranked[:count]]

    def in_flight(self, sweep_id: str) -> list[int]:
        """Experiments running, or published and not yet started."""
        pipe = self._r.pipeline(transaction=False)
        pipe.hkeys(keys.sweep(sweep_id, "running"))
        for queue in RESOURCE_QUEUES:
            pipe.smembers(keys.queued(sweep_id, queue))
        return [int(i) for members in pipe.execute() for i in members]

    def stages(self, sweep_id: str, indices: list[int]) -> list[str | None]:
        """The shots-as-a-budget stage of each experiment (None: not run at low shots yet)."""
        return self._r.hmget(keys.sweep(sweep_id, "stage"), indices) if indices else []

    # -- writes -----------------------------------------------------------------------------------

    def observe(self, sweep_id: str, rows: list[dict[str, Any]]) -> None:
        """Add finished rows (e.g. reused from an earlier sweep) to what the optimizer sees; the
        workers' rows come in with their record (``SweepState.record_many``)."""
        if rows:
            self._r.hset(
                keys.sweep(sweep_id, "obs"), mapping={str(row["index"]): observation(row) for row in rows}
            )

    def rescore(self, sweep_id: str, queue: str, scores: dict[str, float]) -> int:
        """New scores for experiments still pending (never re-adds one); returns how many changed."""
        key, items, changed = keys.pending(sweep_id, queue), list(scores.items()), 0
        for lo in range(0, len(items), 10_000):
            changed += self._r.zadd(key, dict(items[lo : lo + 10_000]), xx=True, ch=True)
        return changed

    def next_added_point(self, sweep_id: str, base: int, parameters: dict[str, Any]) -> int:
        """Reserve the next point past the lazy product (``base``) for a refinement point."""
        point = base + int(self._r.hincrby(keys.sweep(sweep_id, "meta"), "n_added_points", 1)) - 1
        self._r.hset(keys.sweep(sweep_id, "added"), point, json.dumps(parameters))
        return point

    def add_pending(self, sweep_id: str, scored: list[tuple[str, int, float]]) -> None:
        """New experiments ``(queue, index, score)`` (refinement points) and the sweep's total."""
        pipe = self._r.pipeline(transaction=True)
        for queue, index, score in scored:
            pipe.zadd(keys.pending(sweep_id, queue), {str(index): score}, nx=True)
        pipe.hincrby(keys.sweep(sweep_id, "meta"), "total", len(scored))
        pipe.execute()

    def reserve_point(self, sweep_id: str, base: int) -> int:
        """The next point past the lazy product (``base``), not yet given parameters."""
        return base + int(self._r.hincrby(keys.sweep(sweep_id, "meta"), "n_added_points", 1)) - 1

    def add_promotion(
        self,
        sweep_id: str,
        record: str,
        point: int,
        parameters: dict[str, Any],
        queue: str,
        scored: tuple[list[int], float],
    ) -> bool:
        """Add a ladder promotion: ``point`` (from :meth:`reserve_point`) gets ``parameters`` and
        its experiments ``scored = (indices, score)`` wait in ``queue``, unless ``record`` (the
        point and rung) was promoted before: then nothing changes and False is returned (the
        reserved point stays unused)."""
        indices, score = scored
        keys_ = [
            keys.sweep(sweep_id, "ladder"),
            keys.sweep(sweep_id, "added"),
            keys.sweep(sweep_id, "meta"),
            keys.pending(sweep_id, queue),
        ]
        args = [record, point, json.dumps(parameters), score, *indices]
        return bool(self._promote(keys=keys_, args=args))

    def promotions(self, sweep_id: str) -> dict[str, int]:
        """Every ladder promotion of the sweep: record (see :meth:`add_promotion`) -> point."""
        return {k: int(v) for k, v in self._r.hgetall(keys.sweep(sweep_id, "ladder")).items()}

    def offer_picks(self, sweep_id: str, scored: dict[int, float]) -> None:
        """The refit's picks from its candidate pool, point -> score, for the coordinator's next
        fill; they replace the last refit's picks not taken yet."""
        pipe = self._r.pipeline(transaction=True)
        pipe.delete(keys.sweep(sweep_id, "picks"))
        if scored:
            pipe.zadd(keys.sweep(sweep_id, "picks"), {str(p): s for p, s in scored.items()})
        pipe.execute()

    def withdraw(self, sweep_id: str, queue: str, member: str) -> bool:
        """Take a pending experiment out (to stop it early); False if it was published meanwhile."""
        return bool(self._r.zrem(keys.pending(sweep_id, queue), member))

    def stop_running(self, sweep_id: str, experiment_ids: list[str]) -> int:
        """Ask running experiments to stop at their next report; returns how many were not asked yet."""
        return int(self._r.sadd(keys.sweep(sweep_id, "stop"), *experiment_ids)) if experiment_ids else 0

    def set_stage(self, sweep_id: str, index: int, stage: str) -> None:
        self._r.hset(keys.sweep(sweep_id, "stage"), index, stage)

    def promote(self, sweep_id: str, queue: str, index: int) -> None:
        """A low-shot run goes on to its full shots, before every other pending experiment."""
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(keys.sweep(sweep_id, "stage"), index, "full")
        pipe.zadd(keys.pending(sweep_id, queue), {str(index): 2.0})  # above every score
        pipe.execute()

    def save_refit(self, sweep_id: str, summary: dict[str, Any]) -> None:
        """The last refit's summary (shown by ``status``) and the history of refits."""
        text = json.dumps(summary)
        pipe = self._r.pipeline()
        pipe.hset(keys.sweep(sweep_id, "meta"), "optimizer", text)
        pipe.lpush(keys.sweep(sweep_id, "optimizer:history"), text)
        pipe.ltrim(keys.sweep(sweep_id, "optimizer:history"), 0, HISTORY - 1)
        pipe.execute()

    def history(self, sweep_id: str, limit: int = HISTORY) -> list[dict[str, Any]]:
        return [
            json.loads(v) for v in self._r.lrange(keys.sweep(sweep_id, "optimizer:history"), 0, limit - 1)
        ]
