"""The curve model that guards crossing curves: where a reported curve is heading."""

from __future__ import annotations

import numpy as np

from orchestrator.optimizer.curve_model import MIN_POINTS, predict_end
from orchestrator.optimizer.early_stopping import MedianRule


def _curve(final: float, tau: float, steps: int, amplitude: float = 1.0) -> list[float]:
    return [final + amplitude * float(np.exp(-t / tau)) for t in range(1, steps + 1)]


def test_an_exact_curve_is_predicted_to_its_end() -> None:
    predicted = predict_end(_curve(0.3, 4.0, 12))
    assert predicted is not None
    assert abs(predicted.point - 0.3) < 0.01
    assert predicted.optimistic <= predicted.point and predicted.optimistic > 0.25


def test_a_slow_starter_is_seen_ending_below_its_fast_peers() -> None:
    # at step 5 the slow curve is the worst of the three, but it ends best
    slow, fast = _curve(0.0, 10.0, 5), [_curve(f, 2.0, 5) for f in (0.2, 0.25)]
    assert all(slow[-1] > f[-1] for f in fast)
    ends = [predict_end(c) for c in (slow, *fast)]
    assert all(e is not None for e in ends)
    assert ends[0].optimistic < min(e.point for e in ends[1:])  # type: ignore[union-attr]


def test_a_curve_that_is_mostly_noise_gets_no_prediction() -> None:
    rng = np.random.default_rng(0)
    assert predict_end((0.5 + rng.normal(0, 0.1, 20)).tolist()) is None
    assert predict_end([1.0, 0.9, 0.8][: MIN_POINTS - 1]) is None


def test_best_against_best_judges_a_shared_transient_where_running_averages_cannot() -> None:
    # every curve falls by 2.0; the finals differ by at most 0.1
    finals = np.linspace(0.0, 0.1, 7)
    completed = [_curve(float(f), 5.0, 30, amplitude=2.0) for f in finals]
    worse = _curve(0.09, 5.0, 30, amplitude=2.0)[:6]  # worse than the median final (0.05)
    assert MedianRule(5, 5).should_stop(worse, completed)
    assert MedianRule(5, 5, curve_model=False).should_stop(worse, completed)
    # Vizier's comparison: the completed curves' running averages trail far behind at step 6
    assert not MedianRule(5, 5, compare="running_average", curve_model=False).should_stop(worse, completed)


def test_no_run_is_judged_at_or_past_the_longest_completed_curve() -> None:
    completed = [[1.0] * 9 + [0.0] for _ in range(5)]
    rule = MedianRule(3, 5, curve_model=False)
    assert not rule.should_stop([0.5] * 10, completed), "the last step: never judged"
    assert rule.should_stop([2.0] * 9, completed)


def test_a_long_curve_is_fitted_on_evenly_spaced_values() -> None:
    predicted = predict_end(_curve(0.3, 400.0, 2000))
    assert predicted is not None and abs(predicted.point - 0.3) < 0.01
