"""Builders shared by the optimizer tests: small sweeps and a sequential run loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from core.config import SweepConfiguration
from orchestrator.optimizer import BaseOptimizer


def make_sweep(
    parameters: dict[str, Any],
    *,
    objectives: list[Any] | None = None,
    optimizer: dict[str, Any] | None = None,
    constraints: dict[str, Any] | None = None,
    seed: int = 0,
) -> SweepConfiguration:
    return SweepConfiguration.model_validate(
        {
            "name": "opt-test",
            "projects": [{"name": "p", "path": "."}],
            "parameters": parameters,
            "objectives": objectives if objectives is not None else [{"metric": "value", "goal": "minimize"}],
            "constraints": constraints or {},
            "optimizer": optimizer or {},
            "seed": seed,
        }
    )


def result(index: int, params: dict[str, Any], metrics: dict[str, float], **extra: Any) -> dict[str, Any]:
    row = {
        "experiment_id": f"e{index}",
        "index": index,
        "status": "completed",
        "parameters": params,
        "metrics": metrics,
    }
    row.update(extra)
    return row


def run_adaptive(
    opt: BaseOptimizer, fn: Callable[[dict[str, Any]], float], stop: Callable[[int], bool], limit: int
) -> list[int]:
    """Run points one at a time in the optimizer's order; returns the indices in run order."""
    pending = set(range(opt.space.size))
    results: list[dict[str, Any]] = []
    order: list[int] = []
    rec = None
    while pending and len(order) < limit:
        rec = opt.analyze_results(results, np.fromiter(pending, dtype=np.int64), previous=rec)
        index = rec.top(1)[0]
        pending.discard(index)
        params = opt.space.point(index)
        results.append(result(index, params, {"value": fn(params)}))
        order.append(index)
        if stop(index):
            break
    return order
