"""Bounds on what one request can cost the server: a bounded pool for heavy builds, and a rate
per client on expensive routes. Both refuse in the error shape with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

import anyio
import anyio.to_thread

from orchestrator.web.auth import ApiRefusal


def _later(status: int, message: str, code: str, seconds: int) -> ApiRefusal:
    """A refusal that tells the client when to come back (``Retry-After``)."""
    return ApiRefusal(
        status, message, code=code, fix=f"try again in {seconds} s", headers={"Retry-After": str(seconds)}
    )


class BuildPool:
    """At most ``workers`` builds at once and ``queue`` more waiting; one build per key.

    Requests for a key already being built wait for that build instead of starting another
    (32 readers of one report cost one build). Past the queue, a 503 with ``Retry-After``.
    """

    def __init__(self, workers: int, queue: int, retry_after: int = 5) -> None:
        self.slots = asyncio.Semaphore(workers)
        self.capacity = workers + queue
        self.retry_after = retry_after
        self.pending: dict[Hashable, asyncio.Future[Any]] = {}

    async def run(self, key: Hashable, build: Callable[[], Awaitable[Any]]) -> Any:
        shared = self.pending.get(key)
        if shared is not None:
            return await asyncio.shield(shared)
        if len(self.pending) >= self.capacity:
            raise _later(
                503, f"the server is building {len(self.pending)} reports already", "busy", self.retry_after
            )
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[key] = future
        try:
            async with self.slots:
                future.set_result(await build())
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter, then raised here
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
        finally:
            del self.pending[key]
        return future.result()


class RateLimit:
    """A token bucket per client: ``burst`` requests at once, then ``per_second`` on average."""

    def __init__(self, burst: int, per_second: float, what: str) -> None:
        self.burst, self.per_second, self.what = burst, per_second, what
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)

    def take(self, client: str) -> None:
        now = time.monotonic()
        tokens, then = self.buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.per_second)
        if tokens < 1:
            wait = max(1, round((1 - tokens) / self.per_second))
            raise _later(429, f"too many {self.what} requests from this client", "rate_limited", wait)
        self.buckets[client] = (tokens - 1, now)
        if len(self.buckets) > 10_000:  # forget idle clients rather than grow without end
            self.buckets = {
                c: b for c, b in self.buckets.items() if now - b[1] < self.burst / self.per_second
            }


class ThreadGate:
    """Blocking work on ``threads`` threads of its own, ``queue`` more calls waiting, then 503.

    Threads that hold the GIL slow the event loop that answers everything else: a few of them
    finish the same work as many, and leave it room.
    """

    def __init__(self, threads: int, queue: int, what: str, retry_after: int = 2) -> None:
        self.limiter = anyio.CapacityLimiter(threads)
        self.capacity, self.what, self.retry_after = threads + queue, what, retry_after
        self.busy = 0

    async def run(self, work: Callable[..., Any], *args: Any) -> Any:
        if self.busy >= self.capacity:
            raise _later(
                503, f"the server has {self.busy} {self.what} in hand already", "busy", self.retry_after
            )
        self.busy += 1
        try:
            return await anyio.to_thread.run_sync(work, *args, limiter=self.limiter)
        finally:
            self.busy -= 1
