"""A training-style project: curves of ``steps`` reported values, ``seconds`` long in all.

Five families, each with a known best (``true_value``), imported by
``benchmarks/early_stopping.py`` to give Optuna the very same curves:

* ``learning``: a loss falling towards ``4 (x - 0.7)^2`` (best at x = 0.7) with a small shared
  decay: a run worse than the median at the end is worse from the first steps on;
* ``transient``: a shared fall of 2.0 that is 20 times the spread of the final values
  ``0.2 (x - 0.7)^2``: a peer's running average trails its current value by about that spread;
* ``crossing``: the better the final value ``(x - 0.7)^2``, the slower the fall (time constant
  2 to 10 steps): early on the best runs look worst, and they cross the others near step 15;
* ``noisy``: ``0.5 (x - 0.7)^2`` plus a shared fall and noise (sd 0.08) comparable to the spread;
  the true value is the noise-free final one;
* ``shots``: shots as fidelity, ``1 - p(x)`` estimated from 50 more binomial shots a step, so the
  estimate's variance falls with shots.
"""

from __future__ import annotations

import math
import random
import time

FAMILIES = ("learning", "transient", "crossing", "noisy", "shots")
SHOTS_PER_STEP = 50
NOISE = 0.08


def loss_at(x: float, step: int) -> float:
    """The ``learning`` family."""
    return 4.0 * (x - 0.7) ** 2 + 0.5 * math.exp(-step / 8.0)


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


def curve(family: str, x: float, steps: int) -> list[float]:
    """The reported values of configuration ``x`` (deterministic per ``x``)."""
    if family == "shots":
        return shot_curve(x, steps)
    if family == "noisy":
        rng = random.Random(round(x * 1e6) + 7)
        return [
            0.5 * (x - 0.7) ** 2 + 0.5 * math.exp(-t / 8.0) + rng.gauss(0.0, NOISE)
            for t in range(1, steps + 1)
        ]
    if family == "transient":
        return [0.2 * (x - 0.7) ** 2 + 2.0 * math.exp(-t / 8.0) for t in range(1, steps + 1)]
    if family == "crossing":
        tau = 2.0 + 8.0 * (1.0 - abs(x - 0.7) / 0.7)
        return [(x - 0.7) ** 2 + math.exp(-t / tau) for t in range(1, steps + 1)]
    return [loss_at(x, t) for t in range(1, steps + 1)]


def true_value(family: str, x: float, steps: int) -> float:
    """What configuration ``x`` is really worth: its final value without noise (``1 - p``: shots)."""
    if family == "shots":
        return 1.0 - success_probability(x)
    if family == "noisy":
        return 0.5 * (x - 0.7) ** 2 + 0.5 * math.exp(-steps / 8.0)
    return curve(family, x, steps)[-1]


def run(
    x: float, family: str = "learning", steps: int = 40, seconds: float = 4.0, report=None
) -> dict[str, float]:  # noqa: ANN001
    """One run of ``family``: a step every ``seconds / steps``, each reporting the loss so far."""
    loss = math.inf
    for loss in curve(family, x, steps):
        time.sleep(seconds / steps)
        if report is not None:
            report({"loss": loss})
    return {"loss": loss}
