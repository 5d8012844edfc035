"""A test project with known truth: ``y = 2a + 0.5b`` (``c`` does not matter) plus N(0, 0.1) noise.

Every run reports the noiseless value as ``truth`` so tests can check interval coverage, and a
second objective ``cost_like = (1 - a)**2 + b`` that trades off against ``y`` for a Pareto front.
"""

from __future__ import annotations

import random

NOISE_SD = 0.1


def run(a: float, b: float, c: float) -> dict[str, float]:
    truth = 2.0 * a + 0.5 * b
    rng = random.Random()  # fresh OS entropy: repeats must differ
    return {
        "y": truth + rng.gauss(0.0, NOISE_SD),
        "truth": truth,
        "cost_like": (1.0 - a) ** 2 + b + rng.gauss(0.0, NOISE_SD),
    }
