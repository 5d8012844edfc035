"""Early stopping: the median rule and shots as fidelity never stop the eventual best point."""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np

from core.optimizer_config import EarlyStoppingConfig
from orchestrator.optimizer import GPOptimizer, MedianRule, RandomOptimizer, stopping_rule
from orchestrator.optimizer.early_stopping import StopCandidate, select_stops, stop_allowance
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
    rule = MedianRule(grace_steps=3, min_completed=5)
    completed: list[list[float]] = []
    stopped: set[int] = set()
    for i, final in enumerate(finals):
        curve = _curve(final, rng)
        for t in range(1, len(curve) + 1):
            if rule.should_stop(curve[:t], completed, sign=1.0):
                stopped.add(i)
                break
        else:
            completed.append(curve)
    assert best not in stopped
    assert len(stopped) >= 10  # the rule does stop the poor runs


def _curve_results(curves: list[list[float]]) -> list[dict[str, Any]]:
    return [
        result(i, {"x": i / 40}, {"value": c[-1]}, extra={"intermediate": c}) for i, c in enumerate(curves)
    ]


def test_should_early_stop_respects_the_share_and_the_switch() -> None:
    config = make_sweep(
        GRID, optimizer={"startup_points": 4, "early_stopping": {**EARLY, "max_stopped_share": 0.1}}
    )
    opt = GPOptimizer(config)
    rng = np.random.default_rng(0)
    history = _curve_results([_curve(0.2, rng) for _ in range(6)])
    bad = _curve(5.0, rng)[:5]
    decisions: list[bool] = []
    for _ in range(5):
        stopped = sum(decisions)
        decisions.append(
            opt.should_early_stop({"x": 0.5}, bad, results=history, sweep_size=20, stopped=stopped)
        )
    assert decisions == [True, True, False, False, False]  # 10% of 20
    # stopped rows among the results count towards the share by default
    stopped_rows = [{**history[0], "experiment_id": f"s{i}", "status": "early_stopped"} for i in range(2)]
    assert not opt.should_early_stop({"x": 0.5}, bad, results=history + stopped_rows, sweep_size=20)
    off = GPOptimizer(make_sweep(GRID, optimizer={"startup_points": 4}))
    assert not off.should_early_stop({"x": 0.5}, bad, results=history, sweep_size=20)
    assert stop_allowance(0.5, 10, 4) == 1


def test_should_early_stop_depends_on_its_arguments_only() -> None:
    # the decision once depended on whichever refit ran last; now no refit changes it
    config = make_sweep(GRID, optimizer={"startup_points": 4, "early_stopping": EARLY})
    opt = GPOptimizer(config)
    rng = np.random.default_rng(2)
    good = _curve_results([_curve(0.2, rng) for _ in range(6)])
    poor = _curve_results([_curve(9.0, rng) for _ in range(6)])
    mid = _curve(1.0, rng)[:6]

    def decide() -> tuple[bool, bool]:
        return (
            opt.should_early_stop({"x": 0.5}, mid, results=good, sweep_size=40),
            opt.should_early_stop({"x": 0.5}, mid, results=poor, sweep_size=40),
        )

    before, snapshot = decide(), pickle.dumps(opt)
    assert before == (True, False)
    opt.analyze_results(poor, np.arange(6, 41), partials={"r": mid})
    opt.analyze_results(good, np.arange(6, 41), partials={"r": mid})
    assert decide() == before
    assert pickle.dumps(opt) == snapshot, "a refit leaves the optimizer as it was"


def test_the_median_rule_is_the_strategy_the_options_choose() -> None:
    options = EarlyStoppingConfig(enabled=True, grace_steps=2, min_completed=7)
    assert stopping_rule(options) == MedianRule(grace_steps=2, min_completed=7)
    assert stopping_rule(EarlyStoppingConfig(enabled=False)) is None
    assert stopping_rule(EarlyStoppingConfig(enabled=True, median_rule=False)) is None


def test_the_share_cap_keeps_the_surest_stops_and_promotes_spared_low_shot_runs() -> None:
    candidates = [
        StopCandidate("a", "median"),
        StopCandidate("b", "not promoted", margin=2.0, low_shot=True),
        StopCandidate("c", "not promoted", margin=0.5, low_shot=True),
    ]
    stops, spared = select_stops(candidates, 2)
    assert [(s.experiment_id, s.reason) for s in stops] == [("b", "not promoted"), ("c", "not promoted")]
    assert spared == ()
    stops, spared = select_stops(candidates, 1)
    assert [s.experiment_id for s in stops] == ["b"] and spared == ("c",)


def test_a_model_free_sampler_applies_the_median_rule_to_running_experiments() -> None:
    median_only = {**EARLY, "low_fidelity_share": None}
    config = make_sweep(GRID, optimizer={"sampler": "random", "early_stopping": median_only})
    rng = np.random.default_rng(3)
    history = _curve_results([_curve(0.2, rng) for _ in range(6)])
    partials = {"bad": _curve(5.0, rng)[:5], "good": _curve(0.0, rng)[:5]}
    rec = RandomOptimizer(config).analyze_results(history, np.arange(6, 41), partials=partials)
    assert rec.early_stop_candidates == ["bad"] and rec.stop_reason("bad") == "median"


def _fidelity(x: float) -> float:
    return 0.95 * math.exp(-((x - 0.63) ** 2) / 0.02)


def test_low_shot_runs_of_the_best_point_are_promoted() -> None:
    config = make_sweep(
        GRID,
        objectives=[{"metric": "fidelity", "goal": "maximize"}],
        optimizer={"startup_points": 4, "early_stopping": EARLY},
    )
    opt = GPOptimizer(config)
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
    promoted = set(rec.promote_to_full_shots)
    assert f"e{best}" in promoted and f"e{best}" not in stopped
    assert stopped  # clearly poor low-shot runs stop
    assert stopped | promoted == {f"e{i}" for i in low}
    assert len(stopped) <= math.floor(0.6 * len(rows))
    # the same decision for one experiment at a time
    assert not opt.should_early_stop(
        {"x": float(xs[best])},
        {"fidelity": _fidelity(xs[best]), "shots": shots, "shot_fraction": 0.1},
        results=rows,
        sweep_size=41,
    )
    assert opt.should_early_stop({"x": 0.0}, {"fidelity": 0.0, "shots": shots}, results=rows, sweep_size=41)
