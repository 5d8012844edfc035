"""Concurrency slots per device in Redis (``limits:open:{device}``): open quantum tasks, bounded by the quota."""

from __future__ import annotations

import time
from typing import Protocol

import redis

from orchestrator.store import keys


class Caps(Protocol):
    """What the gate needs of the service limits (:class:`orchestrator.braket.limits.ServiceLimits`)."""

    def concurrency_for(self, device_arn: str) -> int | None: ...


# KEYS[1] zset of open tasks. ARGV: member, limit, now (s), stale_after (s). Returns 1 if held.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[4]))
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""


class ConcurrencyGate:
    """Open tasks per device, bounded by the quota, shared by all workers.

    Members are the submission's reservation id, so a redelivered submit re-acquires the slot it
    already holds. Members older than ``stale_after`` seconds are dropped: a slot is never leaked
    for ever by a worker that died and an experiment that was abandoned.
    """

    def __init__(
        self,
        client: redis.Redis,
        limits: Caps,
        *,
        prefix: str = keys.PREFIX,
        stale_after: float = 6 * 3600,
    ) -> None:
        self.client, self.limits, self.prefix, self.stale_after = client, limits, prefix, stale_after
        self._acquire = client.register_script(_ACQUIRE)

    def slot_key(self, device_arn: str) -> str:
        """The device's slot set, for :meth:`BudgetLedger.settle` / ``release`` to free a slot
        atomically with the money."""
        return keys.open_tasks(device_arn, prefix=self.prefix)

    def acquire(self, device_arn: str, member: str) -> bool:
        """Hold a slot on ``device_arn`` for ``member``; False when the quota is used up."""
        cap = self.limits.concurrency_for(device_arn)
        if cap is None:
            return True
        return bool(
            self._acquire(keys=[self.slot_key(device_arn)], args=[member, cap, time.time(), self.stale_after])
        )

    def release(self, device_arn: str, member: str) -> None:
        """Give the slot back (idempotent)."""
        self.client.zrem(self.slot_key(device_arn), member)

    def in_flight(self, device_arn: str) -> int:
        return int(self.client.zcard(self.slot_key(device_arn)))
