"""Optimizers that order a sweep's pending experiments, behind one interface.

* ``BaseOptimizer`` (``_base.py``): the role, like Optuna's ``BaseSampler``.
* ``GPOptimizer`` (``sampler: gp``, the default): a Gaussian-process model; its numerics live in
  the private package ``_gp``.
* ``RandomOptimizer`` (``sampler: random``) and ``SobolOptimizer`` (``sampler: sobol``): model-free
  orders.
* ``create_optimizer`` builds the one a sweep chooses in ``optimizer.sampler``.

No Celery or Redis here; ``service`` applies a recommendation to a sweep in Redis. Imports are
lazy: the sweep configuration needs ``OptimizerConfig`` only, and loading the numerics
(scipy.optimize, scipy.linalg) costs time that workers and the CLI should not pay for it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from core.optimizer_config import SAMPLERS, EarlyStoppingConfig, OptimizerConfig

if TYPE_CHECKING:
    from core.config import SweepConfiguration
    from core.space import ParameterSpace
    from orchestrator.optimizer._base import BaseOptimizer

_LAZY = {
    "BaseOptimizer": "orchestrator.optimizer._base",
    "GPOptimizer": "orchestrator.optimizer._gp_optimizer",
    "RandomOptimizer": "orchestrator.optimizer._space_filling",
    "SobolOptimizer": "orchestrator.optimizer._space_filling",
    "OptimizationRecommendation": "orchestrator.optimizer.recommendation",
    "ParameterRegion": "orchestrator.optimizer.recommendation",
    "EarlyStoppingRule": "orchestrator.optimizer.early_stopping",
    "MedianRule": "orchestrator.optimizer.early_stopping",
    "stopping_rule": "orchestrator.optimizer.early_stopping",
    "check_adaptive_sweep": "orchestrator.optimizer.checks",
}
# optimizer.sampler -> the class that implements it
_SAMPLER_CLASSES = {"gp": "GPOptimizer", "random": "RandomOptimizer", "sobol": "SobolOptimizer"}

__all__ = ["SAMPLERS", "EarlyStoppingConfig", "OptimizerConfig", "create_optimizer", *_LAZY]


def create_optimizer(config: SweepConfiguration, space: ParameterSpace | None = None) -> BaseOptimizer:
    """The optimizer the sweep chooses (``optimizer.sampler``), for ``config`` and its ``space``."""
    cls = __getattr__(_SAMPLER_CLASSES[config.optimizer.sampler])
    return cls(config, space)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(name)
