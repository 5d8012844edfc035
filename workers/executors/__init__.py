"""Executors: the seed's ``IExperimentExecutor`` for each kind of resource (no Celery here).

* :class:`BraketLocalExecutor`: circuits on the local simulator (``local:sv``, ``local:dm``);
* :class:`BraketManagedExecutor`: SV1, DM1 and QPUs, as ``submit`` then ``poll``.

Names are imported lazily so that a worker for classical projects never loads the Braket SDK.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CircuitSource": "base",
    "IExperimentExecutor": "base",
    "BraketLocalExecutor": "braket_local",
    "run_local": "braket_local",
    "BraketManagedExecutor": "braket_managed",
    "BilledUsage": "managed_results",
    "PollOutcome": "managed_results",
    "Submission": "managed_results",
    "to_result": "managed_results",
    "BraketUnreachable": "orchestrator.resources.retry",
    "DeviceUnavailable": "orchestrator.resources.retry",
    "RetryPolicy": "orchestrator.resources.retry",
    "client_token": "submissions",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module if "." in module else f"{__name__}.{module}"), name)
