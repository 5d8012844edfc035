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


@pytest.fixture
def test_redis() -> Iterator[TestRedis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"these tests need a Redis at {REDIS_URL} ({exc}); start one (e.g. `make test`)")
    prefix = f"orchtest:{uuid.uuid4().hex[:10]}:"
    yield TestRedis(client, REDIS_URL, prefix)
    clear_prefix(client, prefix)
    client.close()
