"""A training-style project: a loss curve over ``steps`` reported values, ``seconds`` long in all.

The loss of configuration ``x`` falls towards ``4 * (x - 0.7) ** 2`` (best at x = 0.7); every
configuration shares the same decay, so one worse than the median at the end is worse from the
first steps on. ``loss_at`` is imported by ``benchmarks/pruning.py`` to give Optuna the same curves.
"""

from __future__ import annotations

import math
import time


def loss_at(x: float, step: int) -> float:
    return 4.0 * (x - 0.7) ** 2 + 0.5 * math.exp(-step / 8.0)


def train(x: float, steps: int = 40, seconds: float = 4.0, report=None) -> dict[str, float]:  # noqa: ANN001
    loss = math.inf
    for step in range(1, steps + 1):
        time.sleep(seconds / steps)
        loss = loss_at(x, step)
        if report is not None:
            report({"loss": loss})
    return {"loss": loss}
