"""Early stopping: the median rule and shots as fidelity never stop the eventual best point."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from orchestrator.optimizer import AdaptiveOptimizer, median_rule_stops
from orchestrator.optimizer.early_stopping import stop_allowance
from tests.orchestrator.optimizer.conftest import make_sweep, result

EARLY = {
    "enabled": True,
    "grace_steps": 3,
    "min_completed": 5,
    "low_fidelity_share": 0.1,
    "max_stopped_share": 0.6,
}
GRID = {"x": {"start": 0.0, "stop": 1.0, "num": 41}}


def _curve(final: float, rng: np.random.Generator, steps: int = 20) -> list[float]:
    # a loss that decays towards its final value, with measurement noise
    t = np.arange(1, steps + 1)
    return (final + 1.5 * np.exp(-t / 4.0) + rng.normal(0, 0.02, steps)).tolist()


def test_median_rule_never_stops_the_eventual_best_run() -> None:
    rng = np.random.default_rng(7)
    finals = rng.uniform(0.0, 1.0, 40)
    best = int(np.argmin(finals))
    completed: list[list[float]] = []
    stopped: set[int] = set()
    for i, final in enumerate(finals):
        curve = _curve(final, rng)
        for t in range(1, len(curve) + 1):
            if median_rule_stops(curve[:t], completed, sign=1.0, grace_steps=3, min_completed=5):
                stopped.add(i)
                break
        else:
            completed.append(curve)
    assert best not in stopped
    assert len(stopped) >= 10  # the rule does stop the poor runs


def test_should_early_stop_respects_the_share_and_the_switch() -> None:
    config = make_sweep(
        GRID, optimizer={"startup_points": 4, "early_stopping": {**EARLY, "max_stopped_share": 0.1}}
    )
    opt = AdaptiveOptimizer(config)
    rng = np.random.default_rng(0)
    history = [_curve(0.2, rng) for _ in range(6)]
    bad = _curve(5.0, rng)[:5]
    decisions = [
        opt.should_early_stop({"x": 0.5}, bad, experiment_id=f"r{i}", history=history, sweep_size=20)
        for i in range(5)
    ]
    assert decisions == [True, True, False, False, False]  # 10% of 20
    off = AdaptiveOptimizer(make_sweep(GRID, optimizer={"startup_points": 4}))
    assert not off.should_early_stop({"x": 0.5}, bad, history=history, sweep_size=20)
    assert stop_allowance(0.5, 10, 4) == 1


def _fidelity(x: float) -> float:
    return 0.95 * math.exp(-((x - 0.63) ** 2) / 0.02)


def test_low_shot_runs_of_the_best_point_are_promoted() -> None:
    config = make_sweep(
        GRID,
        objectives=[{"metric": "fidelity", "goal": "maximize"}],
        optimizer={"startup_points": 4, "early_stopping": EARLY},
    )
    opt = AdaptiveOptimizer(config)
    xs = opt.space.columns(np.arange(opt.space.size))["x"]
    best = int(np.argmax([_fidelity(x) for x in xs]))
    full = [i for i in range(0, 41, 4) if i != best]  # full-shot results, not at the best point
    rows: list[dict[str, Any]] = [
        result(i, {"x": float(xs[i])}, {"fidelity": _fidelity(xs[i])}) for i in full
    ]
    rng = np.random.default_rng(1)
    shots = 100  # a tenth of 1,000
    low = [i for i in range(41) if i not in full]
    for i in low:
        p = _fidelity(xs[i])
        observed = rng.binomial(shots, p) / shots
        rows.append(
            result(
                i, {"x": float(xs[i])}, {"fidelity": observed}, extra={"shot_fraction": 0.1, "shots": shots}
            )
        )
    pending = np.asarray([i for i in range(41) if i not in full and i not in low], dtype=np.int64)

    rec = opt.analyze_results(rows, pending)

    stopped = set(rec.early_stop_candidates)
    promoted = set(rec.resource_reallocation["promote_to_full_shots"])
    assert f"e{best}" in promoted and f"e{best}" not in stopped
    assert stopped  # clearly poor low-shot runs stop
    assert stopped | promoted == {f"e{i}" for i in low}
    assert len(stopped) <= math.floor(0.6 * len(rows))
    # the same decision for one experiment at a time
    assert not opt.should_early_stop(
        {"x": float(xs[best])}, {"fidelity": _fidelity(xs[best]), "shots": shots, "shot_fraction": 0.1}
    )
    assert opt.should_early_stop({"x": 0.0}, {"fidelity": 0.0, "shots": shots}, experiment_id="far")
