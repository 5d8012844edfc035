"""A test project with known truth: ``y = 2a + 0.5b`` (``c`` does not matter) plus N(0, 0.1) noise.

Every run reports the noiseless value as ``truth`` so tests can check interval coverage, and a
second objective ``cost_like = (1 - a)**2 + b`` that trades off against ``y`` for a Pareto front.
Like many real projects it also reports the standard error of its estimate (``y_stderr``) and
echoes an input (``c``): an uncertainty and a setting, neither of them a metric. ``delay`` slows
a run down (for a sweep cancelled part-way).
"""

from __future__ import annotations

import random
import time

NOISE_SD = 0.1


def run(a: float, b: float, c: float, delay: float = 0.0) -> dict[str, float]:
    time.sleep(delay)
    truth = 2.0 * a + 0.5 * b
    rng = random.Random()  # fresh OS entropy: repeats must differ
    return {
        "y": truth + rng.gauss(0.0, NOISE_SD),
        "y_stderr": NOISE_SD,
        "c": c,
        "truth": truth,
        "cost_like": (1.0 - a) ** 2 + b + rng.gauss(0.0, NOISE_SD),
    }
