"""A real Redis for resource-manager tests: db 15, keys under a prefix unique to each test.

Only the test's own keys are deleted (never ``FLUSHDB``): other suites may share the server.
A missing Redis is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

REDIS_URL = os.environ.get("BRAKET_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@dataclass(frozen=True)
class TestRedis:
    """A client, its URL (for child processes) and the key prefix this test owns."""

    __test__ = False  # not a test class, despite the name

    client: redis.Redis
    url: str
    prefix: str


def clear_prefix(client: redis.Redis, prefix: str) -> None:
    """Delete every key under ``prefix``."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)


def require_redis(url: str) -> redis.Redis:
    """A client for ``url``, or fail the test: in these suites a missing Redis is never a skip."""
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"tests need a Redis at {url} ({exc}); run `make test`, which starts one")
    return client


@pytest.fixture
def test_redis() -> Iterator[TestRedis]:
    client = require_redis(REDIS_URL)
    prefix = f"orchtest:{uuid.uuid4().hex[:10]}:"
    yield TestRedis(client, REDIS_URL, prefix)
    clear_prefix(client, prefix)
    client.close()
