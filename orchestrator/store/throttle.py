"""A global token bucket in Redis, shared by every worker on every machine.

Celery's ``rate_limit`` is per worker; Braket's CreateQuantumTask quota (20/s, burst 40) is per
account and region. The bucket lives in one Redis hash and is refilled and drawn from inside a
Lua script, so concurrent callers never both take the last token. The script reads Redis's own
clock (``TIME``), so workers on machines with skewed clocks still share one notion of "now".
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import redis

from core.errors import InputError
from orchestrator.store import keys

# KEYS[1] bucket hash. ARGV: rate (tokens/s), burst (capacity), tokens requested, idle TTL (ms).
# Returns {granted 0/1, wait_us until enough tokens, server time in us}.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)
  ts = now
end
local granted = 0
local wait = 0
if tokens >= want then
  tokens = tokens - want
  granted = 1
else
  wait = math.ceil((want - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%d', ts))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return {granted, wait, now}
"""


@dataclass(frozen=True)
class Grant:
    """The answer to one draw from the bucket.

    Attributes:
        granted: a token was taken.
        wait: seconds until enough tokens will have accrued (0 when granted).
        server_time: Redis server time of the decision, seconds since the epoch.
    """

    granted: bool
    wait: float
    server_time: float


class TokenBucket:
    """A token bucket whose state lives in Redis under ``{prefix}throttle:{name}``.

    Args:
        client: a Redis client (any db); the bucket is one small hash.
        name: what is limited, e.g. ``CreateQuantumTask:us-east-1``.
        rate: tokens added per second (the sustained limit).
        burst: capacity; at most this many calls can happen back to back. Default: ``rate``
            (one second's worth), deliberately below Braket's burst of 2x so that network jitter
            between our grant and the service's count never pushes a call over.
        prefix: key prefix shared by the deployment.
    """

    def __init__(
        self,
        client: redis.Redis,
        name: str,
        *,
        rate: float,
        burst: float | None = None,
        prefix: str = keys.PREFIX,
    ) -> None:
        if rate <= 0:
            raise InputError(f"rate limit must be > 0 per second, got {rate}", field="rate_limit")
        burst = rate if burst is None else burst
        if burst < 1:
            raise InputError(f"burst must be >= 1, got {burst}", field="burst")
        self.client, self.name, self.rate, self.burst = client, name, float(rate), float(burst)
        self.key = keys.throttle(name, prefix=prefix)
        self._script = client.register_script(_TAKE)
        # Keep the key a little longer than a full refill takes; after that it is equivalent to full.
        self._ttl_ms = int(max(60.0, 2 * self.burst / self.rate) * 1000)

    def try_acquire(self, tokens: float = 1.0) -> Grant:
        """Take ``tokens`` if they are there, without waiting."""
        granted, wait_us, now_us = self._script(
            keys=[self.key], args=[self.rate, self.burst, tokens, self._ttl_ms]
        )
        return Grant(bool(granted), int(wait_us) / 1e6, int(now_us) / 1e6)

    def acquire(self, tokens: float = 1.0, *, timeout: float | None = None) -> bool:
        """Wait until ``tokens`` are taken or ``timeout`` seconds pass.

        Returns:
            True when granted, False on timeout (the caller should back off, not fail).
        """
        if tokens > self.burst:
            raise InputError(f"cannot take {tokens} tokens from a bucket of {self.burst}", field="tokens")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            grant = self.try_acquire(tokens)
            if grant.granted:
                return True
            # A little jitter so that waiting workers do not all wake on the same microsecond.
            pause = grant.wait * (1.0 + random.random() * 0.1)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                pause = min(pause, remaining)
            time.sleep(pause)

    def reset(self) -> None:
        """Forget the bucket's state (it starts full again)."""
        self.client.delete(self.key)


def throttle_requests(
    rate_limit: float,
    *,
    client: redis.Redis,
    name: str = "CreateQuantumTask",
    burst: float | None = None,
    prefix: str = keys.PREFIX,
    timeout: float | None = 30.0,
) -> bool:
    """The seed's ``throttle_requests(rate_limit) -> bool``: wait for a slot in the global bucket.

    Args:
        rate_limit: calls per second allowed across all workers.
        client: Redis shared by all workers.
        name: the bucket (one per limited API and region).
        burst: bucket capacity (default ``rate_limit``).
        prefix: key prefix of the deployment.
        timeout: seconds to wait at most (None: forever).

    Returns:
        True when the caller may make the call now; False if no slot came within ``timeout``.
    """
    return TokenBucket(client, name, rate=rate_limit, burst=burst, prefix=prefix).acquire(timeout=timeout)
