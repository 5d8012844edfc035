"""The resource manager: devices, prices, budgets, service limits and throttling.

The seed's interfaces, as plain functions and classes (no Celery):

* :func:`estimate_cost` (``experiments -> CostEstimate``), from a dated :class:`PriceTable`;
* :func:`get_optimal_device` (``circuit, budget -> DeviceRecommendation``);
* :func:`check_service_limits` (``-> ServiceLimitStatus``);
* :func:`throttle_requests` (``rate_limit -> bool``), over a Redis :class:`TokenBucket`;
* :class:`BudgetLedger`: atomic reserve / settle / release against sweep and global budgets.

Names are imported lazily: the coordinator reads prices without loading the Braket SDK.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "BudgetAlert": "budget",
    "BudgetExceeded": "budget",
    "BudgetLedger": "budget",
    "BudgetStatus": "budget",
    "Reservation": "budget",
    "DeviceCatalog": "catalog",
    "DeviceInfo": "catalog",
    "ExecutionWindow": "catalog",
    "CircuitNeeds": "devices",
    "DeviceRecommendation": "devices",
    "circuit_needs": "devices",
    "get_optimal_device": "devices",
    "CostEstimate": "estimate",
    "DeviceCost": "estimate",
    "estimate_cost": "estimate",
    "ConcurrencyGate": "limits",
    "ServiceLimitStatus": "limits",
    "ServiceLimits": "limits",
    "check_service_limits": "limits",
    "enforce_shots": "limits",
    "load_service_limits": "limits",
    "DevicePrice": "prices",
    "PriceTable": "prices",
    "load_price_table": "prices",
    "TokenBucket": "throttle",
    "throttle_requests": "throttle",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
