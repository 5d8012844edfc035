"""Fixtures: the fake Braket service and moto S3 over HTTP, with a results bucket configured."""

from __future__ import annotations

import pytest

from tests.support.braket_env import BraketTestEnv, braket_env, braket_services  # noqa: F401 - fixtures


@pytest.fixture
def paid_env(braket_env: BraketTestEnv, monkeypatch: pytest.MonkeyPatch) -> BraketTestEnv:  # noqa: F811
    monkeypatch.setenv("ORCHESTRATOR_BRAKET_S3_BUCKET", braket_env.bucket)
    monkeypatch.setenv("ORCHESTRATOR_POLL_INTERVAL", "0.3")
    return braket_env
