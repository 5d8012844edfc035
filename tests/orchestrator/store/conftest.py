"""Fixtures: a real Redis (db 15, per-test key prefix) for the Braket ledgers."""

from __future__ import annotations

from tests.support.redis_db import test_redis  # noqa: F401 - pytest fixture
