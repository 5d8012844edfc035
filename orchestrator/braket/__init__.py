"""Amazon Braket in one place: devices, prices, cost estimates, service limits, programs, the
local simulator and the managed-device executor (no Celery here).

The seed's resource-manager interfaces, as plain functions and classes:

* :func:`estimate_cost` (``experiments -> CostEstimate``), from a dated :class:`PriceTable`;
* :func:`get_optimal_device` (``circuit, budget -> DeviceRecommendation``);
* :func:`check_service_limits` (``-> ServiceLimitStatus``);
* :func:`throttle_requests` (``rate_limit -> bool``), over a Redis :class:`TokenBucket`;
* :class:`BudgetLedger`: atomic reserve / settle / release against sweep and global budgets.

and the seed's ``IExperimentExecutor`` for managed devices, :class:`BraketManagedExecutor`
(``submit`` then ``poll``). What Braket keeps in Redis (budgets, the shared token bucket,
concurrency slots, submission records) lives in :mod:`orchestrator.store` with every other key;
an executor is given it as :class:`BraketLedgers`.
Names are imported lazily: the coordinator reads prices without loading the Braket SDK.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "BraketLedgers": "orchestrator.store.ledgers",
    "BudgetAlert": "orchestrator.store.budget",
    "BudgetExceeded": "orchestrator.store.budget",
    "BudgetLedger": "orchestrator.store.budget",
    "BudgetStatus": "orchestrator.store.budget",
    "Reservation": "orchestrator.store.budget",
    "TokenBucket": "orchestrator.store.throttle",
    "throttle_requests": "orchestrator.store.throttle",
    "ConcurrencyGate": "orchestrator.store.slots",
    "DeviceCatalog": "catalog",
    "DeviceInfo": "catalog",
    "ExecutionWindow": "catalog",
    "CircuitNeeds": "adapters.simulator",
    "DeviceRecommendation": "devices",
    "circuit_needs": "adapters.simulator",
    "get_optimal_device": "devices",
    "CostEstimate": "estimate",
    "DeviceCost": "estimate",
    "estimate_cost": "estimate",
    "ServiceLimitStatus": "limits",
    "ServiceLimits": "limits",
    "check_service_limits": "limits",
    "enforce_shots": "limits",
    "load_service_limits": "limits",
    "DevicePrice": "prices",
    "PriceTable": "prices",
    "load_price_table": "prices",
    "CircuitSource": "programs",
    "IExperimentExecutor": "programs",
    "BraketLocalExecutor": "local",
    "run_local": "adapters.simulator",
    "BraketManagedExecutor": "executor",
    "BilledUsage": "results",
    "PollOutcome": "results",
    "Submission": "results",
    "to_result": "results",
    "BraketUnreachable": "retry",
    "DeviceUnavailable": "retry",
    "RetryPolicy": "retry",
    "client_token": "submissions",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module if "." in module else f"{__name__}.{module}"), name)
