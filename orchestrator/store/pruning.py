"""Early stopping decided by the worker at each report: the shared view every worker asks.

Per sweep (see :mod:`orchestrator.store.keys`):

* ``es:step:{t}`` / ``es:rung:{k}``  sorted sets of signed values (lower is better), member = an
  experiment id: the completed curves' values at step ``t`` (their best so far, or running
  averages; median and percentile rules), or every run's value when it reached rung ``k`` (ASHA).
  A quantile or a rank is O(log n), so a report costs one round trip whatever the sweep's size.
* ``es:reach:{t}`` / ``es:end:{t}``  every run's value at step ``t`` as it reported it (running,
  later stopped or completed: the peers before enough curves are complete), and its curve's
  optimistic end then (the curve model's comparison).
* ``es:front``     sorted set experiment id -> the furthest step it reported: before a curve is
  complete, a run is judged only behind the furthest step another run reached.
* ``es:stopped``   set of every experiment id stopped early, by any rule or path: the share cap.
* ``es:lowrung``   sorted set of low-shot runs' signed values (shots as a budget, one rung).
* ``es:lowrows``   hash index -> the low-shot run's row, to write its stopped row from any worker;
  ``es:lowids`` hash index -> its experiment id (what the cap counts).
* ``es:threshold`` the incumbent's signed value, published by the refit: a low-shot run whose
  optimistic bound cannot beat it stops.
* ``es:at``       sorted set ``"{rule}|{experiment id}"`` -> the step a run was stopped at (0: before
  it started; -1: no step, a low-shot run), written by the same script that counts the stop, so
  ``status`` can say how many runs each rule stopped and where; ``"capped|{experiment id}"`` -> the
  step at which the cap first refused to stop it.
* ``es:saved``    hash ``shots`` -> shots a stop saved (a low-shot run's full shots minus those it
  ran); ``es:lowsaved`` hash index -> what stopping that low-shot run saves.
* ``es:length``   sorted set experiment id -> steps of a completed curve: the longest is "the end"
  the steps saved are counted against, and past whose last step no run is judged.

Every decision that stops a run goes through one Lua script that checks ``max_stopped_share``
against ``es:stopped`` and the sweep's ``total`` in the same step, so two workers deciding at
the same moment never stop more than the cap together.
"""

from __future__ import annotations

import json
import math
import statistics
from typing import TYPE_CHECKING, Any

import redis

from orchestrator.store import keys

if TYPE_CHECKING:  # the rules make queries; the store only reads their fields
    from orchestrator.optimizer.early_stopping import ReportQuery

# The cap, shared by every script below: stop ``eid`` unless the stopped set already holds
# floor(share * total) others. Returns 1 (stopped now or before) or 2 (the cap refused). A new stop
# is recorded for ``status`` in the same step (``es:at``: which rule, at which step; ``es:saved``),
# and so is a refusal (``capped|eid`` in ``es:at``, once per run).
_CAP = """
local function try_stop(stopped, meta, eid, share, at, saved, rule, step, shots)
  if redis.call('SISMEMBER', stopped, eid) == 1 then return 1 end
  local total = tonumber(redis.call('HGET', meta, 'total') or '0')
  local cap = math.floor(share * total + 1e-9)
  if redis.call('SCARD', stopped) >= cap then
    redis.call('ZADD', at, 'NX', step, 'capped|' .. eid)
    return 2
  end
  redis.call('SADD', stopped, eid)
  redis.call('ZADD', at, step, rule .. '|' .. eid)
  if shots and shots > 0 then redis.call('HINCRBYFLOAT', saved, 'shots', shots) end
  return 1
end
"""

# One report. First what it leaves for others: its furthest step (es:front) and, for a quantile
# rule, its entry and optimistic end at this step. A run at or past the longest completed curve's
# last step (before one is complete: the furthest step another run reached) goes on. quantile: the
# peers are the completed entries at the step once there are min_count, else every run that reached
# it once there are min_peers; stop when the value is worse than their interpolated quantile
# (numpy's "linear"). With an end given (the curve model sees the curve's shape), the end is
# judged instead: stop when it is worse than the same quantile of the ends at the step (at least
# min_peers of them). rung: add the value to the rung, then stop unless it is among the best
# max(1, n // eta). Returns 0 (go on), 1 (stop) or 2 (capped).
_JUDGE = (
    _CAP
    + """
local function quantile(key, q)
  local n = redis.call('ZCARD', key)
  local pos = q * (n - 1)
  local lo = math.floor(pos)
  local pair = redis.call('ZRANGE', key, lo, lo + 1, 'WITHSCORES')
  local threshold = tonumber(pair[2])
  if pair[4] then threshold = threshold + (pos - lo) * (tonumber(pair[4]) - threshold) end
  return threshold
end
local entries, stopped, meta, at, saved, reach, ends, front, length =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local eid, kind, value, min_count, q, eta, share =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local rule, step, entry, min_peers, run_end = ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]), ARGV[12]
if redis.call('SISMEMBER', stopped, eid) == 1 then return 1 end
redis.call('ZADD', front, 'GT', step, eid)
if kind == 'rung' then
  redis.call('ZADD', entries, value, eid)
else
  redis.call('ZADD', reach, entry, eid)
  if run_end ~= 'none' and run_end ~= '-inf' then redis.call('ZADD', ends, tonumber(run_end), eid) end
end
local last = redis.call('ZRANGE', length, -1, -1, 'WITHSCORES')
local horizon = tonumber(last[2] or '0')
if horizon == 0 then
  local top = redis.call('ZRANGE', front, 0, 1, 'REV', 'WITHSCORES')
  if top[1] == eid then horizon = tonumber(top[4] or '0') else horizon = tonumber(top[2] or '0') end
end
if step >= horizon then return 0 end
if kind == 'rung' then
  local n = redis.call('ZCARD', entries)
  if n < min_count or n == 0 then return 0 end
  local better = redis.call('ZCOUNT', entries, '-inf', '(' .. ARGV[3])
  if better < math.max(1, math.floor(n / eta)) then return 0 end
else
  if run_end == '-inf' then return 0 end
  if run_end ~= 'none' then
    if redis.call('ZCARD', ends) < min_peers or tonumber(run_end) <= quantile(ends, q) then return 0 end
  else
    local peers = entries
    if redis.call('ZCARD', entries) < min_count then
      peers = reach
      if redis.call('ZCARD', reach) < min_peers then return 0 end
    end
    if value <= quantile(peers, q) then return 0 end
  end
end
return try_stop(stopped, meta, eid, share, at, saved, rule, step, 0)
"""
)

# A low-shot run finished (shots as a budget): add it to the rung, then, once the rung holds
# min_count runs, decide every run of it still waiting (stage low_done): promote the best
# max(1, n // eta) and any the cap spares (stage full, first in line), stop the rest (stage
# stopping; the caller writes their rows). A run whose optimistic value cannot beat the published
# threshold stops at once. Returns {promoted indices, stopped indices}.
_LOW_SHOT = (
    _CAP
    + """
local rung, stopped, meta, stage, pending, threshold_key, ids, at, saved, lowsaved =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local index, value, optimistic, min_count, eta, share =
  ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('ZADD', rung, value, index)
local promoted, stops = {}, {}
local function decide(member, stop)
  if redis.call('HGET', stage, member) ~= 'low_done' then return end
  local eid = redis.call('HGET', ids, member) or member
  local shots = tonumber(redis.call('HGET', lowsaved, member) or '0')
  if stop and try_stop(stopped, meta, eid, share, at, saved, 'shots', -1, shots) == 1 then
    redis.call('HSET', stage, member, 'stopping')
    table.insert(stops, member)
  else
    redis.call('HSET', stage, member, 'full')
    redis.call('ZADD', pending, 2.0, member)
    table.insert(promoted, member)
  end
end
local threshold = tonumber(redis.call('GET', threshold_key) or '')
if threshold and optimistic and optimistic > threshold then decide(index, true) end
local n = redis.call('ZCARD', rung)
if n >= min_count then
  local keep = math.max(1, math.floor(n / eta))
  local members = redis.call('ZRANGE', rung, 0, -1, 'WITHSCORES')
  local kth = tonumber(members[2 * keep])
  for i = 1, #members, 2 do decide(members[i], tonumber(members[i + 1]) > kth) end
end
return {promoted, stops}
"""
)

_TRY_STOP = (
    _CAP
    + "return try_stop(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), KEYS[3], KEYS[4], ARGV[3], "
    + "tonumber(ARGV[4]), tonumber(ARGV[5]))"
)


class PruningStore:
    """The early-stopping state of a deployment's sweeps (see the module docstring)."""

    def __init__(self, client: redis.Redis) -> None:
        self._r = client
        self._judge = client.register_script(_JUDGE)
        self._low_shot = client.register_script(_LOW_SHOT)
        self._try_stop = client.register_script(_TRY_STOP)

    @staticmethod
    def _key(sweep_id: str, part: str) -> str:
        return keys.sweep(sweep_id, f"es:{part}")

    def judge(
        self,
        sweep_id: str,
        experiment_id: str,
        query: ReportQuery,
        *,
        max_share: float = 1.0,
        rule: str = "rule",
    ) -> int:
        """Decide one report atomically (see ``ReportQuery``): 0 go on, 1 stop, 2 the cap refused.

        ``rule`` and the query's ``step`` (the values reported so far) are recorded with a stop,
        for ``status``.
        """
        kind, key, value, step, entry, end = (
            query.kind,
            query.key,
            query.value,
            query.step,
            query.entry,
            query.end,
        )
        if not math.isfinite(value):
            return 0
        entry = value if entry is None or not math.isfinite(entry) else entry
        ends = "none" if end is None else ("-inf" if not math.isfinite(end) else repr(float(end)))
        return int(
            self._judge(
                keys=[
                    self._key(sweep_id, key),
                    *self._stop_keys(sweep_id),
                    self._key(sweep_id, f"reach:{step}"),
                    self._key(sweep_id, f"end:{step}"),
                    self._key(sweep_id, "front"),
                    self._key(sweep_id, "length"),
                ],
                args=[
                    experiment_id,
                    kind,
                    repr(float(value)),
                    query.min_count,
                    query.quantile,
                    query.eta,
                    max_share,
                    rule,
                    step,
                    repr(float(entry)),
                    query.min_peers,
                    ends,
                ],
            )
        )

    def _stop_keys(self, sweep_id: str) -> list[str]:
        """What every stop touches: the stopped set, the sweep's meta, ``es:at`` and ``es:saved``."""
        return [
            self._key(sweep_id, "stopped"),
            keys.sweep(sweep_id, "meta"),
            self._key(sweep_id, "at"),
            self._key(sweep_id, "saved"),
        ]

    def add_completed(
        self, sweep_id: str, experiment_id: str, entries: dict[str, float], steps: int = 0
    ) -> None:
        """A completed run's curve: its value at each key and its ``steps`` (idempotent: one
        member per run)."""
        pipe = self._r.pipeline(transaction=False)
        if steps > 0:
            pipe.zadd(self._key(sweep_id, "length"), {experiment_id: steps})
        for key, value in entries.items():
            if math.isfinite(value):
                pipe.zadd(self._key(sweep_id, key), {experiment_id: value})
        pipe.execute()

    def stopped(self, sweep_id: str) -> set[str]:
        """Every experiment id stopped early so far, by any rule."""
        return set(self._r.smembers(self._key(sweep_id, "stopped")))

    def try_stop(
        self,
        sweep_id: str,
        experiment_id: str,
        max_share: float,
        *,
        rule: str = "refit",
        step: int = 0,
        shots_saved: float = 0.0,
    ) -> bool:
        """Count one more stop under the cap (a stop the refit decides); False if the cap refuses.

        Args:
            rule: recorded as what stopped it. step: the values it had reported (0: it never
                started; -1: no steps, a low-shot run). shots_saved: its full shots minus those run.
        """
        args = [experiment_id, max_share, rule, step, repr(float(shots_saved))]
        return self._try_stop(keys=self._stop_keys(sweep_id), args=args) == 1

    def summary(self, sweep_id: str, total: int) -> dict[str, Any]:
        """What early stopping did, for ``status``: per rule, how many runs it stopped and at which
        step (median, min, max); the steps saved against running all ``total`` experiments to the
        end (the longest completed curve), the shots saved, and ``cap_refused``: the runs the
        share cap kept from being stopped. Empty when nothing was stopped or refused."""
        pipe = self._r.pipeline(transaction=False)
        pipe.zrange(self._key(sweep_id, "at"), 0, -1, withscores=True)
        pipe.zrange(self._key(sweep_id, "length"), -1, -1, withscores=True)
        pipe.hget(self._key(sweep_id, "saved"), "shots")
        stops, longest, shots = pipe.execute()
        by_rule: dict[str, list[int]] = {}
        for member, step in stops:
            by_rule.setdefault(member.split("|", 1)[0], []).append(int(step))
        refused = len(by_rule.pop("capped", []))
        if not by_rule and not refused:
            return {}
        full = int(longest[0][1]) if longest else 0
        rules: dict[str, dict[str, float]] = {}
        for rule, steps in sorted(by_rule.items()):
            at = sorted(s for s in steps if s >= 0)
            rules[rule] = {"stopped": len(steps)}
            if at and full:
                rules[rule] |= {
                    "step_median": float(statistics.median(at)),
                    "step_min": at[0],
                    "step_max": at[-1],
                }
        saved = sum(max(full - s, 0) for steps in by_rule.values() for s in steps if s >= 0) if full else 0
        out: dict[str, Any] = {"rules": rules, "full_steps": full, "steps_saved": saved}
        if refused:
            out["cap_refused"] = refused
        if full and total:
            out["steps_saved_share"] = saved / (full * total)
        if shots:
            out["shots_saved"] = float(shots)
        return out

    # -- shots as a budget --------------------------------------------------------------------------

    def keep_low_shot_row(
        self, sweep_id: str, index: int, row: dict[str, Any], shots_saved: float = 0.0
    ) -> None:
        """The low-shot run's row, so whichever worker stops it can write its stopped row, and the
        shots stopping it saves (its full shots minus those it ran)."""
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(self._key(sweep_id, "lowsaved"), index, repr(float(shots_saved)))
        pipe.hset(self._key(sweep_id, "lowrows"), index, json.dumps(row, default=str))
        pipe.hset(self._key(sweep_id, "lowids"), index, str(row.get("experiment_id")))
        pipe.execute()

    def low_shot_row(self, sweep_id: str, index: int) -> dict[str, Any] | None:
        raw = self._r.hget(self._key(sweep_id, "lowrows"), index)
        return json.loads(raw) if raw else None

    def low_shot_rung(
        self,
        sweep_id: str,
        queue: str,
        index: int,
        *,
        value: float,
        optimistic: float | None,
        min_count: int,
        eta: int,
        max_share: float,
    ) -> tuple[list[int], list[int]]:
        """Add a finished low-shot run to its rung and decide the rung's waiting runs at once.

        Args:
            value: its signed objective (lower is better).
            optimistic: its optimistic bound, compared with the published threshold (None: no
                bound is known, only the rung decides).

        Returns:
            ``(promoted, stopped)`` indices: promoted runs are first in line at full shots;
            stopped ones are at stage ``stopping`` and need their row (:meth:`low_shot_row`).
        """
        promoted, stops = self._low_shot(
            keys=[
                self._key(sweep_id, "lowrung"),
                self._key(sweep_id, "stopped"),
                keys.sweep(sweep_id, "meta"),
                keys.sweep(sweep_id, "stage"),
                keys.pending(sweep_id, queue),
                self._key(sweep_id, "threshold"),
                self._key(sweep_id, "lowids"),
                self._key(sweep_id, "at"),
                self._key(sweep_id, "saved"),
                self._key(sweep_id, "lowsaved"),
            ],
            args=[
                index,
                repr(float(value)),
                "none" if optimistic is None else repr(float(optimistic)),
                min_count,
                eta,
                max_share,
            ],
        )
        return [int(i) for i in promoted], [int(i) for i in stops]

    def publish_threshold(self, sweep_id: str, value: float | None) -> None:
        """The incumbent's signed value (the refit's "cannot beat the best" bound); None clears it."""
        key = self._key(sweep_id, "threshold")
        if value is None or not math.isfinite(value):
            self._r.delete(key)
        else:
            self._r.set(key, repr(float(value)))

    def threshold(self, sweep_id: str) -> float | None:
        raw = self._r.get(self._key(sweep_id, "threshold"))
        return float(raw) if raw else None
