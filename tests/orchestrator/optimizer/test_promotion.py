"""The promotion policy of a fidelity ladder on synthetic observations (no Redis): the share cap,
the budget, ``top_k``, the EI-per-dollar order, and never the same point to the same rung twice."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from core.config import SweepConfiguration, validate_sweep
from orchestrator.braket.prices import load_price_table
from orchestrator.optimizer._gp.encoding import SpaceEncoder
from orchestrator.optimizer.promotion import LadderView, decide, point_key, promotion_cost
from tests.conftest import ROOT
from tests.support.fake_devices import DM1, IONQ

QAOA = str(ROOT / "examples" / "projects" / "qaoa_maxcut")
PRICES = load_price_table()
GAMMAS = [round(g, 3) for g in np.linspace(0.0, 1.0, 21)]


def ladder(
    rungs: list[dict[str, Any]], promote: dict[str, Any] | None = None, shots: list[int] | None = None
) -> SweepConfiguration:
    project = {
        "name": "qaoa",
        "path": QAOA,
        "device": None,
        "fidelities": rungs,
        **({"promote": promote} if promote else {}),
    }
    return validate_sweep(
        {
            "name": "ladder",
            "projects": [project],
            "parameters": {"gamma": GAMMAS, "shots": shots or [100]},
            "objectives": [{"metric": "approx_ratio", "goal": "maximize"}],
        }
    )


TWO = [{"device": "local:dm"}, {"device": IONQ, "shots": 100}]  # rung 1: $0.30 + 100 x $0.08 = $8.30


def truth(gamma: float) -> float:
    return 0.9 - 2.0 * (gamma - 0.62) ** 2


def obs(gamma: float, rung: int = 0, *, shots: int = 100, value: float | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"gamma": gamma, "shots": shots, **({"fidelity": rung} if rung else {})}
    bias = 0.0 if rung else -0.1 + 0.05 * gamma  # the cheap rung reads low, more so at small gamma
    return {
        "project": "qaoa",
        "status": "completed",
        "parameters": params,
        "metrics": {"approx_ratio": truth(gamma) + bias if value is None else value},
    }


def run(config: SweepConfiguration, observations: list[dict[str, Any]], **view: Any) -> list:
    spec = config.projects[0]
    encoder = SpaceEncoder(config.space().info)
    return decide(
        config, encoder, LadderView(spec=spec, repeats=1, observations=observations, **view), PRICES
    )


def test_at_most_max_share_of_the_points_done_on_rung_zero_climb() -> None:
    config = ladder(TWO, {"max_share": 0.2})
    done = [obs(g) for g in GAMMAS]  # 21 points: floor(0.2 x 21) = 4
    chosen = run(config, done)
    assert len(chosen) == 4 and all(p.rung == 1 for p in chosen)
    # 3 promoted before: one more at most; 4 before: none
    before = {(point_key(p.parameters), 1) for p in chosen[:3]}
    assert len(run(config, done, promoted=before)) == 1
    assert run(config, done, promoted={(point_key(p.parameters), 1) for p in chosen}) == []
    # a point still running on rung 0 is not done: it neither counts nor climbs
    busy = {(point_key(o["parameters"]), 0) for o in done[:15]}
    assert len(run(config, done, busy=busy)) == math.floor(0.2 * 6)


def test_a_promotion_the_budget_cannot_cover_is_not_made() -> None:
    config = ladder(TWO, {"max_share": 1.0})
    done = [obs(g) for g in GAMMAS]
    assert promotion_cost(config.projects[0], {"gamma": 0.5, "shots": 100}, 1, 1, PRICES) == 8.3
    assert len(run(config, done, remaining=20.0)) == 2  # 2 x $8.30 fit in $20, a third does not
    assert run(config, done, remaining=8.0) == []
    assert all(p.cost == 8.3 for p in run(config, done, remaining=100.0))


def test_the_best_by_expected_improvement_at_the_top_per_dollar_climb_first() -> None:
    # every point at 100 and 1000 shots: same value, the 1000-shot promotion costs 80.30, not 8.30
    config = ladder([{"device": "local:dm"}, {"device": IONQ}], {"max_share": 0.2}, shots=[100, 1000])
    done = [obs(g, shots=s) for g in GAMMAS for s in (100, 1000)]
    chosen = run(config, done)
    assert chosen and [p.value for p in chosen] == sorted((p.value for p in chosen), reverse=True)
    assert all(p.parameters["shots"] == 100 for p in chosen), "the same gain for a tenth of the price"
    best = max(GAMMAS, key=truth)
    assert abs(chosen[0].parameters["gamma"] - best) <= 0.1, chosen[0]


def test_points_still_to_run_hold_the_money_back_while_they_promise_more() -> None:
    config = ladder(TWO, {"max_share": 1.0})
    explored = [obs(g) for g in GAMMAS if g <= 0.3]  # the good region (0.62) not run yet
    ahead = np.asarray([g for g in GAMMAS if g > 0.3], dtype=object)
    assert (
        run(config, explored, waiting={"gamma": ahead, "shots": np.full(len(ahead), 100, dtype=object)}) == []
    )
    assert run(config, explored), "with nothing left to run, a promotion is worth its price"


def test_a_point_never_climbs_to_a_rung_twice_nor_while_it_waits_there() -> None:
    config = ladder(TWO, {"max_share": 1.0})
    done = [obs(g) for g in GAMMAS]
    keys = {point_key(o["parameters"]) for o in done}
    everything = run(config, done)
    assert {point_key(p.parameters) for p in everything} <= keys
    assert run(config, done, promoted={(k, 1) for k in keys}) == []
    assert run(config, done, busy={(k, 1) for k in keys}) == []  # pending or running on rung 1
    on_top = done + [obs(g, rung=1) for g in GAMMAS]  # done there already (reused rows, say)
    assert run(config, on_top) == []


def test_top_k_promotes_the_k_best_of_each_rung_once() -> None:
    config = ladder(
        [{"device": "local:sv"}, {"device": DM1}, {"device": IONQ, "shots": 100}],
        {"top_k": 2, "max_share": 0.5},
    )
    done = [obs(g) for g in GAMMAS] + [obs(g, rung=1) for g in (0.5, 0.55, 0.6, 0.65)]
    promoted = {(point_key({"gamma": g, "shots": 100}), 1) for g in (0.5, 0.55, 0.6, 0.65)}
    chosen = run(config, done, promoted=promoted)
    by_rung = {r: sorted(p.parameters["gamma"] for p in chosen if p.rung == r) for r in (1, 2)}
    # rung 0's two best (0.6, 0.65) climbed before; its next best are not among the K best
    assert by_rung[1] == []
    assert by_rung[2] == [0.6, 0.65], chosen  # rung 1's two best climb to the top
    fresh = run(config, [obs(g) for g in GAMMAS])
    assert sorted(p.parameters["gamma"] for p in fresh) == [0.6, 0.65]


def test_a_sweep_without_objectives_promotes_nothing() -> None:
    config = ladder(TWO, {"max_share": 1.0}).model_copy(update={"objectives": []})
    assert run(config, [obs(g) for g in GAMMAS]) == []
