"""The global token bucket: grants counted per window, from Redis's own clock, across processes."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest
import redis

from core.errors import InputError
from orchestrator.store.throttle import TokenBucket, throttle_requests
from tests.support.redis_db import TestRedis

RATE, BURST = 40.0, 4.0
# Grant times are Redis's microseconds as float seconds since the epoch: at that magnitude a double
# resolves about 0.24 us, so a window measured from them can be short by that much (RATE x 0.24 us
# = 1e-5 tokens). The bound is checked to 1e-4 tokens: a real excess is a whole grant.
SLACK = 1e-4


def _hammer(url: str, prefix: str, seconds: float, out: mp.Queue) -> None:
    bucket = TokenBucket(redis.Redis.from_url(url), "bench", rate=RATE, burst=BURST, prefix=prefix)
    grants, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        grant = bucket.try_acquire()
        if grant.granted:
            grants.append(grant.server_time)
    out.put(grants)


def test_bucket_never_grants_more_than_burst_plus_rate_times_window(test_redis: TestRedis) -> None:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [
        ctx.Process(target=_hammer, args=(test_redis.url, test_redis.prefix, 1.5, out)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    grants = sorted(t for _ in procs for t in out.get(timeout=60))
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len(grants) > BURST, "four hammering processes got almost nothing"
    for window in (0.05, 0.25, 0.5, 1.0):
        worst = max(sum(1 for t in grants[i:] if t - start <= window) for i, start in enumerate(grants))
        assert worst <= BURST + RATE * window + SLACK, f"{worst} grants in {window}s"
    span = grants[-1] - grants[0]
    assert len(grants) <= BURST + RATE * span + SLACK


def test_acquire_waits_for_refill_and_throttle_requests_times_out(test_redis: TestRedis) -> None:
    bucket = TokenBucket(test_redis.client, "one", rate=1.0, burst=1.0, prefix=test_redis.prefix)
    assert bucket.try_acquire().granted
    denied = bucket.try_acquire()
    assert not denied.granted and 0 < denied.wait <= 1.0
    assert not throttle_requests(
        1.0, client=test_redis.client, name="one", burst=1.0, prefix=test_redis.prefix, timeout=0.05
    )
    assert throttle_requests(
        1.0, client=test_redis.client, name="one", burst=1.0, prefix=test_redis.prefix, timeout=2.0
    )
    assert test_redis.client.exists(f"{test_redis.prefix}throttle:one")


def test_bad_rates_are_input_errors(test_redis: TestRedis) -> None:
    with pytest.raises(InputError, match="rate limit must be > 0"):
        TokenBucket(test_redis.client, "x", rate=0)
    with pytest.raises(InputError, match="cannot take 5"):
        TokenBucket(test_redis.client, "x", rate=1, burst=2, prefix=test_redis.prefix).acquire(5)
