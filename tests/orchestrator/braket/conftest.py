"""Fixtures: a real Redis (db 15, per-test key prefix) and the fake Braket + moto S3 services."""

from __future__ import annotations

from tests.support.braket_env import braket_env, braket_services  # noqa: F401 - pytest fixtures
from tests.support.redis_db import test_redis  # noqa: F401 - pytest fixture
