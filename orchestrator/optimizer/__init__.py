"""The adaptive optimizer: a Gaussian-process model that re-orders pending experiments.

The numerics live in the private package ``_gp``; this package is the thin public layer the
coordinator calls (no Celery or Redis here).
"""

from __future__ import annotations

from orchestrator.optimizer.config import EarlyStoppingConfig, OptimizerConfig
from orchestrator.optimizer.early_stopping import median_rule_stops, promotion_stops
from orchestrator.optimizer.optimizer import AdaptiveOptimizer
from orchestrator.optimizer.recommendation import OptimizationRecommendation, ParameterRegion
from orchestrator.optimizer.validation import validate_adaptive_sweep

__all__ = [
    "AdaptiveOptimizer",
    "EarlyStoppingConfig",
    "OptimizationRecommendation",
    "OptimizerConfig",
    "ParameterRegion",
    "median_rule_stops",
    "promotion_stops",
    "validate_adaptive_sweep",
]
