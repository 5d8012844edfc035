"""Every sampler behind the one interface: chosen by ``optimizer.sampler``, pure, frozen output."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from core.config import validate_sweep
from core.errors import InputError
from orchestrator.optimizer import (
    SAMPLERS,
    BaseOptimizer,
    GPOptimizer,
    RandomOptimizer,
    SobolOptimizer,
    create_optimizer,
)
from tests.orchestrator.optimizer.conftest import make_sweep, result, run_adaptive

GRID = {"x": {"start": 0.0, "stop": 1.0, "num": 25}, "y": {"start": 0.0, "stop": 1.0, "num": 25}}
CLASSES = {"gp": GPOptimizer, "random": RandomOptimizer, "sobol": SobolOptimizer}


def _value(p: dict[str, Any]) -> float:
    return (p["x"] - 0.62) ** 2 + (p["y"] - 0.27) ** 2


def _results(opt: BaseOptimizer, done: list[int]) -> list[dict[str, Any]]:
    return [result(i, opt.space.point(i), {"value": _value(opt.space.point(i))}) for i in done]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_the_sweep_chooses_the_sampler(sampler: str) -> None:
    opt = create_optimizer(make_sweep(GRID, optimizer={"sampler": sampler}))
    assert type(opt) is CLASSES[sampler] and opt.name == sampler
    rec = opt.analyze_results(_results(opt, [0, 100, 300]), np.arange(400, 625))
    assert rec.sampler == sampler
    assert sorted(rec.priority_adjustments) == list(range(400, 625)), "every pending point is scored"
    assert len(set(rec.priority_adjustments.values())) == 225, "a strict order"


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_a_recommendation_is_frozen_and_refits_leave_no_state(sampler: str) -> None:
    config = make_sweep(GRID, optimizer={"sampler": sampler, "startup_points": 4})
    opt = create_optimizer(config)
    done = [0, 77, 150, 300, 512, 624]
    pending = np.setdiff1d(np.arange(625), done)
    first = opt.analyze_results(_results(opt, done), pending)
    opt.analyze_results(_results(opt, done[:3]), pending[:50])  # a refit of another state between
    again = create_optimizer(config).analyze_results(_results(opt, done), pending)
    assert (
        opt.analyze_results(_results(opt, done), pending).priority_adjustments == first.priority_adjustments
    )
    assert again.priority_adjustments == first.priority_adjustments
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.summary = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        first.priority_adjustments[1] = 1.0  # type: ignore[index]


def test_the_sobol_order_spreads_its_head_and_continues_the_sequence() -> None:
    opt = SobolOptimizer(make_sweep(GRID, optimizer={"sampler": "sobol", "batch_size": 8}))
    rec = opt.analyze_results([], np.arange(625))
    assert rec.phase == "space_filling"
    head = rec.top(8)
    pts = np.asarray([[opt.space.point(i)["x"], opt.space.point(i)["y"]] for i in head])
    gaps = np.linalg.norm(pts[:, None] - pts[None], axis=2) + np.eye(8) * 9
    assert gaps.min() > 0.15, "no two of the first points crowd together"
    # once those ran, the next refit continues the sequence elsewhere
    nxt = opt.analyze_results(_results(opt, head), np.setdiff1d(np.arange(625), head)).top(8)
    later = np.asarray([[opt.space.point(i)["x"], opt.space.point(i)["y"]] for i in nxt])
    assert np.linalg.norm(later[:, None] - pts[None], axis=2).min() > 0.05


def test_the_random_order_keeps_each_point_in_place_as_others_finish() -> None:
    opt = RandomOptimizer(make_sweep(GRID, optimizer={"sampler": "random"}, seed=4))
    first = opt.analyze_results([], np.arange(625)).top(625)
    done = first[:10]
    later = opt.analyze_results(_results(opt, done), np.setdiff1d(np.arange(625), done)).top(615)
    assert later == first[10:]
    other = RandomOptimizer(make_sweep(GRID, optimizer={"sampler": "random"}, seed=5))
    assert other.analyze_results([], np.arange(625)).top(20) != first[:20], "the seed decides the order"


def test_the_gp_finds_the_optimum_sooner_than_the_model_free_samplers() -> None:
    # the seam is real: the same loop runs every sampler, and only the GP uses the values
    values = {i: _value(make_sweep(GRID).space().point(i)) for i in range(625)}
    best = min(values, key=values.get)  # type: ignore[arg-type]
    found = {}
    for sampler in SAMPLERS:
        opt = create_optimizer(make_sweep(GRID, optimizer={"sampler": sampler, "startup_points": 6}, seed=3))
        found[sampler] = len(run_adaptive(opt, _value, lambda i: i == best, limit=60))
    assert found["gp"] < 30 and found["gp"] < min(found["random"], found["sobol"]), found


@pytest.mark.parametrize(
    "options, field",
    [
        ({"sampler": "random", "refinement": True}, "optimizer.refinement"),
        (
            {"sampler": "sobol", "early_stopping": {"enabled": True, "low_fidelity_share": 0.25}},
            "optimizer.early_stopping.low_fidelity_share",
        ),
    ],
)
def test_options_that_need_a_model_are_refused_without_one(options: dict[str, Any], field: str) -> None:
    data = {
        "name": "s",
        "projects": [{"name": "p", "path": "."}],
        "parameters": GRID,
        "objectives": ["value"],
        "optimizer": options,
    }
    with pytest.raises(InputError) as err:
        validate_sweep(data, source="sweep.yaml")
    assert field in err.value.message and "sampler: gp" in str(err.value)


def test_an_unknown_sampler_names_the_choices() -> None:
    with pytest.raises(InputError) as err:
        validate_sweep(
            {
                "name": "s",
                "projects": [{"name": "p", "path": "."}],
                "parameters": GRID,
                "optimizer": {"sampler": "tpe"},
            },
            source="sweep.yaml",
        )
    assert err.value.field == "optimizer.sampler"
    assert "'gp', 'random' or 'sobol'" in err.value.message and "'tpe'" in err.value.message
