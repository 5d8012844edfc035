"""The Lua scripts of the sweep store: every multi-step change that must be atomic is one script.

Each runs as one step on the server (no other client sees a half-done change), against the keys
of :mod:`orchestrator.store.keys`. The sweep store (:mod:`~orchestrator.store.sweeps` and the
modules beside it) is their only caller, many calls at once through :func:`run_batched`;
``tests/orchestrator/store`` tests each of them against a real Redis.
"""

from __future__ import annotations

from typing import Any

import redis

#: a script's calls for :func:`run_batched`: (keys, args) each
Calls = list[tuple[list[Any], list[Any]]]


def run_batched(client: redis.Redis, script: Any, calls: Calls) -> list[Any]:
    """Run ``script`` (registered on ``client``) once per ``(keys, args)`` in one round trip: one
    call directly, more as EVALSHAs in a pipeline.

    redis-py's own pipeline asks ``SCRIPT EXISTS`` first, a second round trip on every call of
    the hot path; here the script is loaded only when Redis answers NOSCRIPT (a new or flushed
    server), which means that call did not run.
    """
    if len(calls) <= 1:
        return [script(keys=k, args=a) for k, a in calls]
    results = _evalsha(client, script, calls)
    missing = [i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)]
    if missing:
        script.sha = client.script_load(script.script)
        for i, r in zip(missing, _evalsha(client, script, [calls[i] for i in missing]), strict=True):
            results[i] = r
    for r in results:
        if isinstance(r, Exception):
            raise r
    return results


def _evalsha(client: redis.Redis, script: Any, calls: Calls) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for k, a in calls:
        pipe.evalsha(script.sha, len(k), *k, *a)
    return list(pipe.execute(raise_on_error=False))


# Record results exactly once, a batch of them in one call (each as if alone). The terminal hash
# entry is the anchor: the first writer wins, later deliveries of the same experiment change
# nothing (no second row, no double count). A final row's attempt count goes: nothing reads it
# once the experiment is terminal (a claim stops at the terminal hash), and it was 85 of the 522
# bytes a completed experiment kept in Redis. KEYS: terminal, meta, stream, done, running, obs,
# attempts, then each record's lease; ARGV: 8 per record (index, status, id, row, token, cost,
# final, summary).
RECORD = """
local terminal, meta, stream, done, running, obs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local attempts = KEYS[7]
local out = {}
for r = 0, #ARGV / 8 - 1 do
  local a = r * 8
  local index, status, exp_id, payload, token, cost, final, summary =
    ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8]
  local lease = KEYS[8 + r]
  local recorded = 1
  if final == '1' then recorded = redis.call('HSETNX', terminal, index, status) end
  if recorded == 1 then
    redis.call('XADD', stream, '*', 'row', payload)
    if final == '1' then
      redis.call('HINCRBY', meta, 'n_' .. status, 1)
      if tonumber(cost) and tonumber(cost) > 0 then redis.call('HINCRBYFLOAT', meta, 'cost', cost) end
      if status == 'completed' then redis.call('SADD', done, exp_id) end
      redis.call('HDEL', attempts, index)
    end
    redis.call('HSET', obs, index, summary)
  end
  redis.call('HDEL', running, index)
  if redis.call('GET', lease) == token then redis.call('DEL', lease) end
  out[#out + 1] = recorded
end
return out
"""

# An event with the next id of its sweep: ids let a Server-Sent Events client resume after the
# last one it saw (Last-Event-ID). The list stays newest first and capped.
EVENT = """
local id = redis.call('INCR', KEYS[2])
local entry = cjson.decode(ARGV[1])
entry['id'] = id
redis.call('LPUSH', KEYS[1], cjson.encode(entry))
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return id
"""

# Everything a worker checks and marks before it runs an experiment, for a batch of them in one
# call (the same steps, in the same order, as separate commands would take): sweep state,
# terminal result, lease (SET NX PX), then out of "queued", into "running", one more attempt. A
# low-shot stage (shots as a budget) is done once its stage is set: its row is not terminal, so
# a redelivered low-shot message (a run longer than the visibility timeout) must not run it
# again. KEYS: meta, terminal, queued, running, attempts, stage, then each experiment's lease;
# ARGV: token, ttl_ms, running_json, then (index, low_shots) per experiment. Returns
# (outcome, attempt) per experiment, flat.
CLAIM = """
local meta, terminal, queued, running, attempts, stage = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local token, ttl_ms, running_json = ARGV[1], ARGV[2], ARGV[3]
local state = redis.call('HGET', meta, 'state')
local out = {}
for e = 0, (#ARGV - 3) / 2 - 1 do
  local index, low_shots, lease = ARGV[4 + 2 * e], ARGV[5 + 2 * e], KEYS[7 + e]
  if not state then
    out[#out + 1], out[#out + 2] = 'unknown-sweep', 0
  elseif state == 'cancelled' or state == 'cancelling' or state == 'timed_out' then
    redis.call('SREM', queued, index)
    out[#out + 1], out[#out + 2] = 'cancelled', 0
  elseif redis.call('HEXISTS', terminal, index) == 1
      or (low_shots == '1' and redis.call('HEXISTS', stage, index) == 1) then
    redis.call('SREM', queued, index)
    out[#out + 1], out[#out + 2] = 'already-done', 0
  elseif not redis.call('SET', lease, token, 'NX', 'PX', ttl_ms) then
    out[#out + 1], out[#out + 2] = 'leased', 0
  else
    redis.call('SREM', queued, index)
    redis.call('HSET', running, index, running_json)
    out[#out + 1], out[#out + 2] = 'run', redis.call('HINCRBY', attempts, index, 1)
  end
end
return out
"""

# An experiment marked running whose lease is gone: its worker died (a live one keeps the lease
# alive). Back to pending, first in line, unless it finished meanwhile or is a managed quantum
# task (those are polled and hold no lease; re-running one would submit it again).
ORPHAN = """
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
# The message that retries it is on its way: it counts as queued (KEYS[4]) until that arrives.
RELEASE = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
redis.call('SADD', KEYS[4], ARGV[1])
return 1
"""

# Keep leases alive, all of a worker process's in one call: each still held with its token
# (KEYS[i], ARGV[i + 1]) lives ARGV[1] more milliseconds.
REFRESH_LEASES = """
local n = 0
for i, lease in ipairs(KEYS) do
  if redis.call('GET', lease) == ARGV[i + 1] then n = n + redis.call('PEXPIRE', lease, ARGV[1]) end
end
return n
"""

# A state change that only applies from the ``allowed`` states (ARGV[2], JSON), with extra fields.
TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'state')
local ok = false
for _, s in ipairs(cjson.decode(ARGV[2])) do if s == current then ok = true end end
if not ok then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
for k, v in pairs(cjson.decode(ARGV[3])) do redis.call('HSET', KEYS[1], k, v) end
return 1
"""

# Give an experiment back (as _RELEASE), first in line, and pause a running sweep. Returns 1 if
# this call paused it: many workers may hit one budget at once, the alert is written once.
PAUSE = """
local running, attempts, lease, pending, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local index, token, reason = ARGV[1], ARGV[2], ARGV[3]
redis.call('HDEL', running, index)
redis.call('HINCRBY', attempts, index, -1)
if redis.call('GET', lease) == token then redis.call('DEL', lease) end
redis.call('ZADD', pending, 'inf', index)
if redis.call('HGET', meta, 'state') ~= 'running' then return 0 end
redis.call('HSET', meta, 'state', 'paused', 'paused_reason', reason)
return 1
"""

# Give an experiment back (as _RELEASE), first in line, for another worker to take.
GIVE_BACK = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
if redis.call('HEXISTS', KEYS[5], ARGV[1]) == 0 then redis.call('ZADD', KEYS[4], 'inf', ARGV[1]) end
return 1
"""

# A quantum task was created: keep its ARN, mark it running with the ARN (so orphan requeue
# leaves it to its poll task), and drop the submitting delivery's lease.
NOTE_TASK = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
return 1
"""

# A quantum task FAILED: count it; while attempts remain, back to pending for a new task. With a
# task ARN (ARGV[3]), only while that task is the one noted for the experiment (KEYS[4]): two
# polls of one FAILED task count it once.
RESUBMIT = """
if ARGV[3] ~= '' then
  local noted = redis.call('HGET', KEYS[4], ARGV[1])
  if not noted or cjson.decode(noted)['arn'] ~= ARGV[3] then return -1 end
  redis.call('HDEL', KEYS[4], ARGV[1])
end
local failed = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if failed + 1 > tonumber(ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], 'inf', ARGV[1])
return 1
"""

# Experiments marked queued whose message the broker no longer holds (ARGV): back to pending,
# first in line, unless a worker took them meanwhile (out of "queued") or they finished.
REQUEUE_LOST = """
local queued, pending, terminal = KEYS[1], KEYS[2], KEYS[3]
local n = 0
for _, index in ipairs(ARGV) do
  if redis.call('SREM', queued, index) == 1 and redis.call('HEXISTS', terminal, index) == 0 then
    redis.call('ZADD', pending, 'inf', index)
    n = n + 1
  end
end
return n
"""

# Take the coordinator lock, or keep it if this coordinator holds it.
LOCK = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('EXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""

UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Move the best ``n`` pending experiments to "queued" in one round trip; returns them with scores.
TAKE = """
local top = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
if #top == 0 then return top end
local members = {}
for i = 1, #top, 2 do members[#members + 1] = top[i] end
redis.call('ZREM', KEYS[1], unpack(members))
redis.call('SADD', KEYS[2], unpack(members))
return top
"""

# Materialise experiments into the pending sets, and move the fill cursor with them: one step, so
# a crash leaves every point either before the cursor and materialised, or after it and not.
# KEYS: meta, picked, terminal, then the pending set of each queue. ARGV[1] is the cursor
# the caller read (another value: someone filled meanwhile, nothing is done, -1), ARGV[2] the new
# cursor, ARGV[3] '1' when it is the end, ARGV[4] the experiments of the points it passed that
# constraints exclude (the sweep's ``total`` counted them), then (kind, queue key number, point, member, score)
# per experiment: kind 'c' walked by the cursor (skipped if its point was picked ahead of it),
# 'p' an optimizer pick ahead of the cursor (re-scored if its point is materialised already),
# 's' a pick behind the cursor (materialised by it: only re-scored, if still pending);
# an empty score is an experiment reused from an earlier result (terminal at once).
MATERIALIZE = """
local meta, picked, terminal = KEYS[1], KEYS[2], KEYS[3]
if tonumber(redis.call('HGET', meta, 'fill_cursor') or '0') ~= tonumber(ARGV[1]) then return -1 end
local new, added, reused, picked_now = {}, 0, 0, 0
for i = 5, #ARGV, 5 do
  local kind, q, point, member, score = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if kind == 's' then
    redis.call('ZADD', KEYS[q], 'XX', score, member)
  elseif new[point] == nil then
    new[point] = redis.call('SISMEMBER', picked, point) == 0
    redis.call(kind == 'c' and 'SREM' or 'SADD', picked, point)
    if kind == 'p' and new[point] then picked_now = picked_now + 1 end
  end
  if kind ~= 's' and new[point] then
    if score == '' then
      reused = reused + redis.call('HSETNX', terminal, member, 'reused')
    else
      added = added + redis.call('ZADD', KEYS[q], 'NX', score, member)
    end
  elseif kind == 'p' and score ~= '' then
    redis.call('ZADD', KEYS[q], 'XX', score, member)
  end
end
redis.call('HINCRBY', meta, 'total', 0 - tonumber(ARGV[4]))
redis.call('HINCRBY', meta, 'n_reused', reused)
if picked_now > 0 then redis.call('HINCRBY', meta, 'n_picked', picked_now) end
redis.call('HSET', meta, 'fill_cursor', ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', meta, 'fill_done', 1) end
return added
"""
