"""A training-style project: a loss curve over ``steps`` reported values, ``seconds`` long in all.

The loss of configuration ``x`` falls towards ``4 * (x - 0.7) ** 2`` (best at x = 0.7); every
configuration shares the same decay, so one worse than the median at the end is worse from the
first steps on. ``loss_at`` and ``shot_curve`` (the shots-as-fidelity family) are imported by
``benchmarks/early_stopping.py`` to give Optuna the same curves.
"""

from __future__ import annotations

import math
import random
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


SHOTS_PER_STEP = 50


def success_probability(x: float) -> float:
    """The shots family's true success probability (best at x = 0.7, 0.9)."""
    return 0.9 - 0.8 * (x - 0.7) ** 2


def shot_curve(x: float, steps: int) -> list[float]:
    """Shots as fidelity: after step ``t`` the estimate of ``1 - p(x)`` from ``t * SHOTS_PER_STEP``
    binomial shots, so its variance falls with shots. Deterministic per ``x``."""
    rng, p, hits, out = random.Random(round(x * 1e6)), success_probability(x), 0, []
    for step in range(1, steps + 1):
        hits += sum(rng.random() < p for _ in range(SHOTS_PER_STEP))
        out.append(1.0 - hits / (step * SHOTS_PER_STEP))
    return out


def sample(x: float, steps: int = 40, seconds: float = 4.0, report=None) -> dict[str, float]:  # noqa: ANN001
    """The shots family: one batch of shots a step, reporting the running estimate."""
    loss = math.inf
    for loss in shot_curve(x, steps):
        time.sleep(seconds / steps)
        if report is not None:
            report({"loss": loss})
    return {"loss": loss}
