"""Fixtures: a real Redis (db 15, per-test key prefix) for the Braket ledgers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from orchestrator.store import connect
from tests.support.redis_db import test_redis  # noqa: F401 - pytest fixture


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A decoding client on the suite's Redis (the store's own connection)."""
    yield connect(redis_url)
