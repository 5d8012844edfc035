"""A fidelity ladder's experiments in the plan: rung 0 from the lazy enumeration, a promoted
point an added one carrying ``fidelity: k``; each waits in its rung's queue, on its rung's device,
and its row says which rung it ran on."""

from __future__ import annotations

from typing import Any

from core.config import validate_sweep
from core.models import ExperimentResult
from core.plan import SweepPlan, run_parameters
from core.rows import BASE_COLUMNS, result_row
from tests.conftest import ROOT
from tests.support.fake_devices import IONQ, SV1

QAOA = ROOT / "examples" / "projects" / "qaoa_maxcut"


def ladder_sweep(rungs: list[dict[str, Any]], **project: Any) -> dict[str, Any]:
    """QAOA on a ladder of ``rungs`` over two gammas at 100 shots (and a classical project beside it)."""
    return {
        "name": "ladder",
        "projects": [
            {"name": "qaoa", "path": str(QAOA), "fidelities": rungs, **project},
            {"name": "bell", "path": str(ROOT / "examples" / "projects" / "bell"), "entry": "bell:run"},
        ],
        "parameters": {"gamma": [0.3, 0.6], "beta": [0.3], "p": [1], "graph": ["triangle"], "shots": [100]},
        "adaptive_sampling": False,
    }


LADDER = [{"device": "local:sv"}, {"device": SV1}, {"device": IONQ, "shots": 50}]


def test_rung_zero_comes_from_the_enumeration_and_a_promotion_is_an_added_point() -> None:
    plan = SweepPlan(validate_sweep(ladder_sweep(LADDER)), {"qaoa": "v", "bell": "v"})
    first = plan.experiment(0)
    assert (first.project, first.fidelity, first.device, first.resource) == (
        "qaoa",
        0,
        "local:sv",
        "local_cpu",
    )
    assert plan.resource_of(0) == "local_cpu" and plan.resource_of(1) == "local_cpu"  # bell beside it
    assert plan.experiment(1).fidelity is None  # not a ladder project: no rung
    point = plan.space.size  # the first added point, as OptimizerStore.next_added_point gives it
    for k, queue, device in ((1, "braket_sim", SV1), (2, "braket_qpu", IONQ)):
        params = {**first.parameters, "fidelity": k}
        index = int(plan.experiment_indices([point])[0])
        assert plan.resource_of(index, params) == queue
        plan.added[point] = params
        exp = plan.experiment(index)
        assert (exp.fidelity, exp.device, exp.resource, exp.added) == (k, device, queue, True)
        assert exp.experiment_id != first.experiment_id  # every rung's run is its own experiment
        point += 1
    used, managed = plan.queues()
    assert used == {"local_cpu", "braket_sim", "braket_qpu"} and managed == {"braket_sim", "braket_qpu"}


def test_a_run_gets_its_rungs_shots_and_never_the_fidelity_parameter() -> None:
    spec = validate_sweep(ladder_sweep(LADDER)).projects[0]
    point = {"gamma": 0.3, "shots": 100}
    assert run_parameters(spec, point) == point
    assert run_parameters(spec, {**point, "fidelity": 1}) == point  # SV1 keeps the point's shots
    assert run_parameters(spec, {**point, "fidelity": 2}) == {"gamma": 0.3, "shots": 50}


def test_rows_carry_the_rung_and_null_outside_ladders() -> None:
    plan = SweepPlan(validate_sweep(ladder_sweep(LADDER)), {"qaoa": "v", "bell": "v"})
    plan.added[plan.space.size] = {**plan.experiment(0).parameters, "fidelity": 2}
    promoted = plan.experiment(int(plan.experiment_indices([plan.space.size])[0]))
    row = result_row(ExperimentResult.of(promoted))
    assert "fidelity" in BASE_COLUMNS and (row["fidelity"], row["device"]) == (2, IONQ)
    assert result_row(ExperimentResult.of(plan.experiment(1)))["fidelity"] is None
