"""Braket sessions built the way the orchestrator needs them.

Two choices differ from the SDK's defaults, on purpose:

* botocore's own retries are off for Braket calls. A retry inside botocore would bypass the
  global token bucket (each retry is another CreateQuantumTask against the shared quota) and
  hide throttling from our accounting; the executor retries itself, with backoff and jitter,
  asking the bucket first each time.
* one session per region, built directly for that region. ``AwsDevice`` would otherwise copy a
  session for a regional QPU, and ``AwsSession.copy_session`` drops the botocore config (and
  any event handlers registered on the original client).

Endpoints come from the standard ``AWS_ENDPOINT_URL_BRAKET`` / ``AWS_ENDPOINT_URL_S3``
variables, which is how tests point the real SDK at the fake service and moto.
"""

from __future__ import annotations

import os
import threading

import boto3
from botocore.config import Config
from braket.aws import AwsSession

DEFAULT_REGION = "us-east-1"

_lock = threading.Lock()
_sessions: dict[tuple[int, str], AwsSession] = {}


def default_region() -> str:
    """The region from ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else us-east-1."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def device_region(device_arn: str) -> str | None:
    """The region embedded in a QPU ARN (``arn:aws:braket:eu-north-1::device/...``), else None."""
    parts = device_arn.split(":")
    return parts[3] or None if len(parts) > 3 else None


def braket_session(region: str | None = None) -> AwsSession:
    """A cached ``AwsSession`` for ``region`` in this process, with botocore retries disabled.

    Sessions are cached per process id: a forked worker must not reuse its parent's HTTP pool.
    """
    region = region or default_region()
    key = (os.getpid(), region)
    with _lock:
        session = _sessions.get(key)
        if session is None:
            config = Config(
                retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30, max_pool_connections=20
            )
            boto = boto3.Session(region_name=region)
            client = boto.client("braket", config=config)
            session = AwsSession(boto_session=boto, braket_client=client)
            _sessions[key] = session
        return session


def clear_sessions() -> None:
    """Drop cached sessions (after changing endpoints or credentials in the environment)."""
    with _lock:
        _sessions.clear()
