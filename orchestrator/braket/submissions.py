"""What a managed submission leaves behind in Redis, and the idempotency token it sends.

A submission is recorded *before* CreateQuantumTask (an intent: device, client token, reserved
cost) and again after (with the task ARN). A worker killed between the two leaves the intent; the
redelivered message finds it and repeats the call with the same ``clientToken``, and Braket
answers with the task it already created instead of creating (and billing) a second one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_TOKEN: ContextVar[str | None] = ContextVar("braket_client_token", default=None)


def client_token(experiment_id: str, attempt: int, device: str) -> str:
    """The ``clientToken`` for one attempt of one experiment on one device (<= 64 chars, as Braket allows).

    The device is part of it: a failover to another device is a different request, and reusing
    a token with different parameters is an error on AWS.
    """
    digest = hashlib.sha256(f"{experiment_id}|{attempt}|{device}".encode()).hexdigest()
    return f"orch-{digest[:59]}"


def _inject_token(params: dict[str, Any], **_: Any) -> None:
    token = _TOKEN.get()
    if token:
        params["clientToken"] = token


def install_token_handler(braket_client: Any) -> None:
    """Make ``braket_client`` send the token set by :func:`sending_token` with CreateQuantumTask.

    The SDK never sets ``clientToken``; botocore fills a random UUID in a generic
    ``before-parameter-build`` handler unless the parameter is already there. Registering first
    on the operation-specific event puts ours in before it. Idempotent per client.
    """
    braket_client.meta.events.register_first(
        "before-parameter-build.braket.CreateQuantumTask",
        _inject_token,
        unique_id="orchestrator-client-token",
    )


@contextmanager
def sending_token(token: str) -> Iterator[None]:
    """Within the block, CreateQuantumTask calls from this thread carry ``token``."""
    reset = _TOKEN.set(token)
    try:
        yield
    finally:
        _TOKEN.reset(reset)
