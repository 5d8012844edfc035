"""Budgets that hold with many workers racing: a reservation ledger in Redis.

Before any paid submission a worker reserves the task's estimated cost against the sweep's
budget and the global one, atomically, in one Lua script: either both have room and both are
charged, or neither is and the worker gets a ``BudgetExceeded`` (a ``ResourceError``: the sweep
pauses). When the task's billed metadata arrives the reservation is settled to the actual cost;
when the task fails or is cancelled it is released. Every step is keyed by a reservation id
(experiment id + attempt), so a redelivered Celery message repeats it harmlessly.

Money is stored as integer micro-dollars: Lua numbers are doubles, and adding 0.075/60-sized
floats thousands of times drifts; integers below 2**53 do not.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis

from core.errors import InputError, ResourceError
from orchestrator.store import keys

logger = logging.getLogger(__name__)

MICRO = 1_000_000
DEFAULT_THRESHOLDS = (50, 80, 100)

# Shared Lua: charge/check helpers over a scope hash {limit?, spent, reserved}.
# Alerts: a threshold fires once per scope (HSETNX on the scope's 'fired' hash) and is pushed,
# as JSON, to the scope's alert list, which status readers show.
_ALERTS = """
local function alerts(scope_key, scope_name, fired_key, list_key, thresholds, now)
  local limit = tonumber(redis.call('HGET', scope_key, 'limit'))
  if limit == nil or limit <= 0 then return {} end
  local committed = tonumber(redis.call('HGET', scope_key, 'spent') or '0')
                  + tonumber(redis.call('HGET', scope_key, 'reserved') or '0')
  local out = {}
  for _, th in ipairs(thresholds) do
    if committed * 100 >= th * limit and redis.call('HSETNX', fired_key, tostring(th), now) == 1 then
      local a = cjson.encode({scope=scope_name, threshold=th, committed=committed, limit=limit, at=now})
      redis.call('RPUSH', list_key, a)
      table.insert(out, a)
    end
  end
  return out
end
"""

# KEYS: sweep hash, global hash, reservations, settled, sweep fired, sweep alerts, global fired, global alerts
# ARGV: reservation id, amount (micro-USD), now, sweep name, thresholds (csv)
_RESERVE = (
    _ALERTS
    + """
local rid, amount, now = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local thresholds = {}
for th in string.gmatch(ARGV[5], '[^,]+') do table.insert(thresholds, tonumber(th)) end
local existing = redis.call('HGET', KEYS[3], rid)
if existing then return {1, tonumber(existing), 'duplicate'} end
local settled = redis.call('HGET', KEYS[4], rid)
if settled then return {1, tonumber(settled), 'settled'} end
local scopes = {{KEYS[1], ARGV[4], KEYS[5], KEYS[6]}, {KEYS[2], 'global', KEYS[7], KEYS[8]}}
for _, s in ipairs(scopes) do
  local limit = tonumber(redis.call('HGET', s[1], 'limit'))
  if limit ~= nil then
    local committed = tonumber(redis.call('HGET', s[1], 'spent') or '0')
                    + tonumber(redis.call('HGET', s[1], 'reserved') or '0')
    if committed + amount > limit then
      if redis.call('HSETNX', s[3], 'refused', now) == 1 then
        redis.call('RPUSH', s[4], cjson.encode({scope=s[2], threshold=100, committed=committed, limit=limit,
                                                 at=now, refused=amount}))
      end
      return {0, committed, s[2], limit}
    end
  end
end
redis.call('HINCRBY', KEYS[1], 'reserved', amount)
redis.call('HINCRBY', KEYS[2], 'reserved', amount)
redis.call('HSET', KEYS[3], rid, amount)
local out = alerts(KEYS[1], ARGV[4], KEYS[5], KEYS[6], thresholds, now)
for _, a in ipairs(alerts(KEYS[2], 'global', KEYS[7], KEYS[8], thresholds, now)) do table.insert(out, a) end
return {1, amount, 'reserved', out}
"""
)

# KEYS as _RESERVE, then optionally the device's slot set (KEYS[9]). ARGV: reservation id, actual
# (micro-USD) or -1 to release, now, sweep name, thresholds. The slot goes in the same script as
# the money: a task that ended never holds one without the other.
_SETTLE = (
    _ALERTS
    + """
local rid, actual, now = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if KEYS[9] then redis.call('ZREM', KEYS[9], rid) end
local thresholds = {}
for th in string.gmatch(ARGV[5], '[^,]+') do table.insert(thresholds, tonumber(th)) end
if redis.call('HEXISTS', KEYS[4], rid) == 1 then return {0, 'settled'} end
local held = tonumber(redis.call('HGET', KEYS[3], rid) or '0')
if actual < 0 and held == 0 then return {0, 'unknown'} end
redis.call('HINCRBY', KEYS[1], 'reserved', -held)
redis.call('HINCRBY', KEYS[2], 'reserved', -held)
redis.call('HDEL', KEYS[3], rid)
if actual < 0 then return {1, 'released'} end
redis.call('HINCRBY', KEYS[1], 'spent', actual)
redis.call('HINCRBY', KEYS[2], 'spent', actual)
redis.call('HSET', KEYS[4], rid, actual)
local out = alerts(KEYS[1], ARGV[4], KEYS[5], KEYS[6], thresholds, now)
for _, a in ipairs(alerts(KEYS[2], 'global', KEYS[7], KEYS[8], thresholds, now)) do table.insert(out, a) end
return {1, 'settled', out}
"""
)


def to_micro(usd: float) -> int:
    """USD -> integer micro-dollars (rounded half up)."""
    return int(round(usd * MICRO))


@dataclass(frozen=True)
class BudgetAlert:
    """A budget threshold crossed (or a reservation refused).

    Attributes:
        scope: ``sweep:<id>`` or ``global``.
        threshold: percent of the limit (50, 80, 100).
        committed: USD spent + reserved when it fired.
        limit: the scope's limit in USD.
        at: Unix time it fired.
        refused: USD of the task that was refused, when this alert is a refusal.
    """

    scope: str
    threshold: int
    committed: float
    limit: float
    at: float
    refused: float | None = None

    @property
    def message(self) -> str:
        if self.refused is not None:
            return (
                f"{self.scope} budget exhausted: ${self.committed:.4f} of ${self.limit:.4f} committed, "
                f"next task (${self.refused:.4f}) refused"
            )
        return f"{self.scope} budget at {self.threshold}%: ${self.committed:.4f} of ${self.limit:.4f}"

    @classmethod
    def from_json(cls, text: str | bytes) -> BudgetAlert:
        raw = json.loads(text)
        refused = raw.get("refused")
        return cls(
            scope=raw["scope"],
            threshold=int(raw["threshold"]),
            committed=raw["committed"] / MICRO,
            limit=raw["limit"] / MICRO,
            at=float(raw["at"]),
            refused=None if refused is None else refused / MICRO,
        )


@dataclass(frozen=True)
class Reservation:
    """A successful reservation.

    Attributes:
        reservation_id: the caller's idempotency key (experiment id + attempt).
        amount: USD held.
        state: ``reserved``, ``duplicate`` (already held) or ``settled`` (already billed).
        alerts: thresholds this reservation crossed.
    """

    reservation_id: str
    amount: float
    state: str
    alerts: tuple[BudgetAlert, ...] = ()


@dataclass(frozen=True)
class BudgetStatus:
    """Where a sweep's money is (for status, the API and Flower-side dashboards).

    Attributes:
        limit / spent / reserved: the sweep's numbers in USD (limit None: unlimited).
        global_limit / global_spent / global_reserved: the same across all sweeps.
        alerts: every alert recorded for the sweep and globally, oldest first.
    """

    sweep_id: str
    limit: float | None
    spent: float
    reserved: float
    global_limit: float | None
    global_spent: float
    global_reserved: float
    alerts: tuple[BudgetAlert, ...] = field(default_factory=tuple)

    @property
    def remaining(self) -> float | None:
        return None if self.limit is None else self.limit - self.spent - self.reserved


class BudgetExceeded(ResourceError):
    """The next paid task would take a budget over its limit; the sweep should pause."""

    def __init__(self, message: str, *, scope: str, committed: float, limit: float, needed: float) -> None:
        super().__init__(message)
        self.scope, self.committed, self.limit, self.needed = scope, committed, limit, needed


def check_limit(usd: float | None, *, field: str = "budget_limit") -> None:
    """The budget rule for a value that did not come through a validated config field (those hold
    it as ``ge=0``): None (no limit) or 0 USD or more.

    Raises:
        InputError: a negative budget, naming ``field``.
    """
    if usd is not None and usd < 0:
        raise InputError(
            f"budget must be >= 0 USD, got {usd}", field=field, fix="give 0 or more, or none for no limit"
        )


class BudgetLedger:
    """Sweep and global budgets in Redis under ``{prefix}budget:...`` (:func:`keys.budget`).

    Args:
        client: Redis shared by all workers and the coordinator.
        prefix: the deployment's key prefix.
        thresholds: alert thresholds in percent of the limit.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = keys.PREFIX,
        thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS,
    ) -> None:
        self.client, self.prefix, self.thresholds = client, prefix, tuple(sorted(thresholds))
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)

    # -- keys ---------------------------------------------------------------------------------

    def _key(self, sweep_id: str | None, part: str = "") -> str:
        return keys.budget(sweep_id, part, prefix=self.prefix)

    def _keys(self, sweep_id: str, slot: str | None = None) -> list[str]:
        """KEYS of the reserve and settle scripts (and the slot to free, for settle)."""
        return [
            self._key(sweep_id),
            self._key(None),
            self._key(sweep_id, "reservations"),
            self._key(sweep_id, "settled"),
            self._key(sweep_id, "fired"),
            self._key(sweep_id, "alerts"),
            self._key(None, "fired"),
            self._key(None, "alerts"),
        ] + ([slot] if slot else [])

    def _args(self, sweep_id: str, reservation_id: str, micro: int) -> list[str | int]:
        """ARGV of the reserve and settle scripts."""
        now = f"{time.time():.3f}"
        return [reservation_id, micro, now, f"sweep:{sweep_id}", ",".join(map(str, self.thresholds))]

    # -- configuration ------------------------------------------------------------------------

    def set_limit(self, sweep_id: str | None, limit: float | None) -> None:
        """Set the USD limit of a sweep (or the global one when ``sweep_id`` is None); None removes it.

        Raises:
            InputError: a negative limit.
        """
        key = self._key(sweep_id)
        # A new limit re-arms the thresholds: 50 % of a raised budget is worth a new alert.
        self.client.delete(self._key(sweep_id, "fired"))
        if limit is None:
            self.client.hdel(key, "limit")
            return
        check_limit(limit)
        self.client.hset(key, "limit", to_micro(limit))

    # -- the money path -----------------------------------------------------------------------

    def reserve(self, sweep_id: str, reservation_id: str, amount: float) -> Reservation:
        """Hold ``amount`` USD against the sweep's and the global budget, atomically.

        Raises:
            BudgetExceeded: either budget would go over its limit; nothing was held.
            InputError: a negative amount.
        """
        if amount < 0:
            raise InputError(f"cannot reserve a negative amount ({amount})", field="amount")
        res = self._reserve(
            keys=self._keys(sweep_id), args=self._args(sweep_id, reservation_id, to_micro(amount))
        )
        if int(res[0]) == 0:
            committed, scope, limit = int(res[1]) / MICRO, _text(res[2]), int(res[3]) / MICRO
            logger.warning(
                "%s budget refused a task of $%.4f: $%.4f of $%.4f committed", scope, amount, committed, limit
            )
            raise BudgetExceeded(
                f"{scope} budget: ${committed:.4f} of ${limit:.4f} already spent or reserved; the next task "
                f"(${amount:.4f}) would exceed it. Raise the budget or stop the sweep.",
                scope=scope,
                committed=committed,
                limit=limit,
                needed=amount,
            )
        alerts = _logged(BudgetAlert.from_json(a) for a in (res[3] if len(res) > 3 else []))
        return Reservation(reservation_id, int(res[1]) / MICRO, _text(res[2]), alerts)

    def settle(
        self, sweep_id: str, reservation_id: str, actual: float, *, slot: str | None = None
    ) -> tuple[BudgetAlert, ...]:
        """Replace the reservation by the billed ``actual`` cost (idempotent).

        A settle without a reservation still records the spend (e.g. a task found after a crash).

        Args:
            slot: the concurrency slot set the task held (:meth:`ConcurrencyGate.slot_key`); freed
                in the same atomic step.
        """
        if actual < 0:
            raise InputError(f"billed cost cannot be negative ({actual})", field="actual")
        res = self._settle(
            keys=self._keys(sweep_id, slot), args=self._args(sweep_id, reservation_id, to_micro(actual))
        )
        return _logged(BudgetAlert.from_json(a) for a in (res[2] if len(res) > 2 else []))

    def release(self, sweep_id: str, reservation_id: str, *, slot: str | None = None) -> bool:
        """Give a reservation back (task failed, cancelled, or never created). Idempotent.

        Args:
            slot: the concurrency slot set to free in the same atomic step (see :meth:`settle`).

        Returns:
            True when something was released.
        """
        res = self._settle(keys=self._keys(sweep_id, slot), args=self._args(sweep_id, reservation_id, -1))
        return int(res[0]) == 1

    # -- reading ------------------------------------------------------------------------------

    def status(self, sweep_id: str) -> BudgetStatus:
        """The sweep's and the global numbers, with every alert recorded so far."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(self._key(sweep_id))
        pipe.hgetall(self._key(None))
        pipe.lrange(self._key(sweep_id, "alerts"), 0, -1)
        pipe.lrange(self._key(None, "alerts"), 0, -1)
        sweep, glob, sweep_alerts, global_alerts = pipe.execute()
        sweep, glob = _decode(sweep), _decode(glob)
        alerts = sorted(
            (BudgetAlert.from_json(a) for a in [*sweep_alerts, *global_alerts]), key=lambda a: a.at
        )
        return BudgetStatus(
            sweep_id,
            _usd(sweep.get("limit")),
            _usd(sweep.get("spent")) or 0.0,
            _usd(sweep.get("reserved")) or 0.0,
            _usd(glob.get("limit")),
            _usd(glob.get("spent")) or 0.0,
            _usd(glob.get("reserved")) or 0.0,
            tuple(alerts),
        )

    def reservation(self, sweep_id: str, reservation_id: str) -> float | None:
        """USD currently held under ``reservation_id`` (None if not held)."""
        value = self.client.hget(self._key(sweep_id, "reservations"), reservation_id)
        return None if value is None else int(value) / MICRO


def _logged(alerts: Iterable[BudgetAlert]) -> tuple[BudgetAlert, ...]:
    out = tuple(alerts)
    for alert in out:
        logger.warning(alert.message)
    return out


def _decode(mapping: dict) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in (mapping or {}).items()}


def _usd(micro: str | None) -> float | None:
    return None if micro is None else int(micro) / MICRO


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
