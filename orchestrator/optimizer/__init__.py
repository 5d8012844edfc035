"""The adaptive optimizer: a Gaussian-process model that re-orders pending experiments.

The numerics live in the private package ``_gp``; this package is the thin public layer the
coordinator calls (no Celery or Redis here; ``service`` applies it to a sweep in Redis).
Imports are lazy: the sweep configuration needs ``OptimizerConfig`` only, and loading the
numerics (scipy.optimize, scipy.linalg) costs time that workers and the CLI should not pay for it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from orchestrator.optimizer.config import EarlyStoppingConfig, OptimizerConfig

_LAZY = {
    "AdaptiveOptimizer": "orchestrator.optimizer.optimizer",
    "OptimizationRecommendation": "orchestrator.optimizer.recommendation",
    "ParameterRegion": "orchestrator.optimizer.recommendation",
    "median_rule_stops": "orchestrator.optimizer.early_stopping",
    "promotion_stops": "orchestrator.optimizer.early_stopping",
    "validate_adaptive_sweep": "orchestrator.optimizer.validation",
}

__all__ = ["EarlyStoppingConfig", "OptimizerConfig", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(name)
