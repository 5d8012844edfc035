"""Which Braket (AWS) errors are worth retrying, and how long to wait between tries.

Short in-process retries absorb throttling and brief 5xx; when they run out the caller gets a
``TransientError`` and Celery retries the whole step later with a countdown (same attempt
number, so the same ``clientToken``: never a second paid task).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from core.errors import ConfigurationError, OrchestratorError, ResourceError, TransientError

T = TypeVar("T")

RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "InternalServiceException",
        "ServiceUnavailableException",
        "ServiceQuotaExceededException",
        "RequestTimeout",
        "TooManyRequestsException",
    }
)
OFFLINE_CODES = frozenset({"DeviceOfflineException", "DeviceRetiredException"})
NETWORK_ERRORS = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ConnectionClosedError,
    ReadTimeoutError,
    ConnectionError,
)


class BraketUnreachable(TransientError):
    """Braket did not answer at all: paid work stays queued; local work can go on."""


class DeviceUnavailable(ResourceError):
    """The device is offline, retired or outside its window, and no configured alternative can
    take the task: the sweep pauses (paid work stays queued) and an alert says why."""


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (empty for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_retryable(exc: BaseException) -> bool:
    """Throttling, 5xx, quota-full and network errors; not validation or permission errors."""
    if isinstance(exc, NETWORK_ERRORS):
        return True
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return error_code(exc) in RETRYABLE_CODES or status >= 500
    return False


def translate(exc: BaseException, what: str) -> Exception:
    """Turn a botocore error into the orchestrator's error classes (messages carry no credentials)."""
    code = error_code(exc)
    if code in OFFLINE_CODES:
        return DeviceUnavailable(f"{what}: {code}")
    if isinstance(exc, NETWORK_ERRORS):
        return BraketUnreachable(f"{what}: Braket unreachable ({type(exc).__name__})")
    if is_retryable(exc):
        return TransientError(f"{what}: {code or type(exc).__name__} persisted after retries")
    if code in ("AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException"):
        return ConfigurationError(
            f"{what}: {code}; check the AWS credentials and Braket permissions of this worker"
        )
    message = exc.response.get("Error", {}).get("Message", "") if isinstance(exc, ClientError) else str(exc)
    return ConfigurationError(f"{what}: {code or type(exc).__name__}: {message}")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter (AWS's recommendation for throttled clients).

    Attributes:
        attempts: tries in total, the first included.
        base: seconds of the first backoff ceiling.
        cap: largest backoff ceiling in seconds.
    """

    attempts: int = 6
    base: float = 0.1
    cap: float = 4.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based): uniform in [0, ceiling]."""
        return random.uniform(0.0, min(self.cap, self.base * 2**retry))

    def call(
        self,
        fn: Callable[[], T],
        what: str,
        *,
        on_retry: Callable[[BaseException], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """Call ``fn``; retry retryable errors; raise a translated orchestrator error otherwise.

        Raises:
            DeviceUnavailable: the device is offline or retired (never retried here).
            BraketUnreachable / TransientError: retryable errors persisted.
            ConfigurationError: errors that retrying cannot fix.
        """
        for retry in range(self.attempts):
            try:
                return fn()
            except OrchestratorError:
                raise  # already classified by ``fn`` (e.g. bad input found on the way)
            except Exception as exc:  # noqa: BLE001 - classified below, never swallowed
                if not is_retryable(exc) or retry == self.attempts - 1:
                    raise translate(exc, what) from exc
                if on_retry:
                    on_retry(exc)
                sleep(self.delay(retry))
        raise AssertionError("unreachable")
