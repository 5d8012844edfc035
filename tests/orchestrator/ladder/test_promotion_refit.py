"""The promotion policy in the coordinator's refit, against a real Redis: a ladder sweep promotes at
most ``max_share`` of its points, each promoted experiment waits first in its rung's queue (the
ladder project's repeats only), a point never climbs to a rung twice (two refits, two processes at
once), and the budget stops promotions it cannot pay.

The first rung's results are recorded as a worker records them (``SweepState.record``); the
promoted experiments are not run here: that they run on their rung's device through real workers is
``test_ladder_sweeps.py``'s (ladder-run's branch), this is what the refit adds to Redis."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest

from core.models import Experiment, ExperimentResult, ExperimentStatus
from core.plan import SweepPlan
from core.project import FIDELITY
from core.rows import result_row
from orchestrator.optimizer.ladder import SCORE, promote
from orchestrator.optimizer.promotion import point_key
from orchestrator.optimizer.service import refit_sweep, settling
from orchestrator.store import SweepState, connect
from tests.conftest import FIXTURES, ROOT
from tests.support.braket_env import BraketTestEnv, braket_env, braket_services  # noqa: F401 - fixtures
from tests.support.fake_devices import IONQ
from tests.support.sweep_state import filled_sweep

QAOA = str(ROOT / "examples" / "projects" / "qaoa_maxcut")
GAMMAS = [round(0.05 * i, 2) for i in range(21)]
RUNG_COST = 0.30 + 100 * 0.08  # IonQ at the rung's 100 shots


def _sweep(**extra: Any) -> dict[str, Any]:
    """QAOA on a local:dm -> IonQ ladder beside a classical project, two repeats per point."""
    return {
        "name": "ladder-promote",
        "projects": [
            {"name": "classic", "path": str(FIXTURES / "projects" / "analytic"), "entry": "analytic:run"},
            {
                "name": "qaoa",
                "path": QAOA,
                "device": None,
                "fidelities": [{"device": "local:dm"}, {"device": IONQ, "shots": 100}],
                "promote": {"max_share": 0.2},
            },
        ],
        "parameters": {"gamma": GAMMAS, "beta": [0.3], "p": [1], "graph": ["triangle"], "shots": [100]},
        "objectives": [{"metric": "approx_ratio", "goal": "maximize"}],
        "repeats": 2,
        "seed": 1,
        **extra,
    }


@pytest.fixture
def ladder_sweep(braket_env: BraketTestEnv, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    monkeypatch.setenv("ORCHESTRATOR_BRAKET_S3_BUCKET", braket_env.bucket)

    def make(**extra: Any) -> tuple[SweepState, str, SweepPlan]:
        """A registered, filled ladder sweep whose first rung is done (nothing else has run)."""
        sweep = filled_sweep(redis_url, tmp_path / "results", _sweep(**extra))
        state, sid, plan = sweep.state, sweep.sid, sweep.plan
        for queue, members in state.optimizer().pending(sid).items():
            for member in members:
                _record(state, sid, plan, queue, int(member))
        state.set_state(sid, "running")
        make.coordinator = sweep.coordinator  # type: ignore[attr-defined]
        return state, sid, plan

    return make


def approx_ratio(gamma: float) -> float:
    return 0.9 - 2.0 * (gamma - 0.62) ** 2 - 0.05  # the simulated rung reads a little low


def _record(state: SweepState, sid: str, plan: SweepPlan, queue: str, index: int) -> None:
    """Record ``index`` as a worker does: off the pending set, its row in the results."""
    exp = plan.experiment(index)
    state._r.zrem(state.pending_key(sid, queue), index)
    metrics = {"approx_ratio": approx_ratio(exp.parameters["gamma"]), "score": 0.0}
    _finish(state, sid, exp, metrics)


def _finish(state: SweepState, sid: str, exp: Experiment, metrics: dict[str, float]) -> None:
    """Its row as a worker writes it (every column), recorded."""
    row = result_row(ExperimentResult.of(exp, status=ExperimentStatus.COMPLETED, metrics=metrics, attempt=1))
    state.record(sid, exp.index, exp.experiment_id, row, status="completed", final=True)


def _promoted(state: SweepState, sid: str, plan: SweepPlan) -> dict[int, dict[str, Any]]:
    return {p: params for p, params in state.optimizer().added(sid).items() if FIDELITY in params}


def test_a_ladder_sweep_promotes_at_most_max_share_first_in_the_rungs_queue(ladder_sweep) -> None:
    state, sid, plan = ladder_sweep()
    total_before = int(state.meta(sid)["total"])
    for _ in range(3):  # every refit runs the policy; the cap holds across them
        refit_sweep(state, sid)
    with settling(state, sid, plan, int(state.meta(sid)["total"])) as settled:  # the sweep's end
        assert settled, "the cap reached: nothing more to promote, the sweep may complete"
    promoted = _promoted(state, sid, plan)
    assert len(promoted) == math.floor(0.2 * len(GAMMAS)), promoted  # 4 of 21: every one worth it
    pending = state.optimizer().pending(sid)
    qpu = {int(m) for m in pending["braket_qpu"]}
    position, width = plan.project_order.index("qaoa"), len(plan.project_order)
    for point, params in promoted.items():
        assert params[FIDELITY] == 1 and {k: v for k, v in params.items() if k != FIDELITY} in [
            plan.space.point(i) for i in range(plan.space.size)
        ]
        indices = {(point * 2 + r) * width + position for r in range(2)}  # qaoa's two repeats, no classic
        assert indices <= qpu, "each repeat of the ladder project waits in the QPU rung's queue"
        assert not {i for i in qpu if plan.point_of([i])[0] == point} - indices
    assert int(state.meta(sid)["total"]) == total_before + 2 * len(promoted)
    # first in line: above every other pending experiment of the sweep, whichever queue
    client = state._r
    scores = [s for _, s in client.zrange(state.pending_key(sid, "braket_qpu"), 0, -1, withscores=True)]
    assert scores and min(scores) > SCORE
    others = [
        s
        for q in ("local_cpu", "braket_sim")
        for _, s in client.zrange(state.pending_key(sid, q), 0, -1, withscores=True)
    ]
    assert all(s < SCORE for s in others)
    events = [e["message"] for e in state.events(sid, 50)]
    assert any(m.startswith("ladder qaoa: promoted") and "EI at the top" in m for m in events), events
    # the policy chose the promising points: near the best gamma, 0.62
    assert all(abs(params["gamma"] - 0.62) <= 0.2 for params in promoted.values()), promoted


def test_a_point_is_never_promoted_to_a_rung_twice_even_by_two_processes_at_once(
    ladder_sweep, redis_url: str
) -> None:
    state, sid, plan = ladder_sweep(adaptive_sampling=False)
    params = {**plan.space.point(3)}
    barrier, got = threading.Barrier(4), []

    def racer() -> None:  # a coordinator of its own: its own connection and plan
        mine = SweepState(connect(redis_url))
        barrier.wait()
        got.append(promote(mine, sid, SweepPlan.of(plan.config, mine.meta(sid)), "qaoa", params, 1))

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([p for p in got if p is not None]) == 1, got
    promoted = _promoted(state, sid, plan)
    assert list(promoted.values()) == [{**params, FIDELITY: 1}]
    assert promote(state, sid, plan, "qaoa", params, 1) is None  # and again later, by a refit
    refit_sweep(state, sid)
    keys = [point_key(p) for p in _promoted(state, sid, plan).values()]
    assert len(keys) == len(set(keys)) > 1, "the refit promoted others, none twice on rung 1"
    assert len(state.optimizer().promotions(sid)) == len(keys)


def test_a_sweep_does_not_complete_past_a_promotion_made_after_it_counted_its_experiments(
    ladder_sweep,
) -> None:
    # no objective: the policy itself promotes nothing, only the promotion made meanwhile counts
    state, sid, plan = ladder_sweep(adaptive_sampling=False, objectives=[])
    total = int(state.meta(sid)["total"])  # the coordinator's snapshot: every experiment done
    assert promote(state, sid, plan, "qaoa", plan.space.point(0), 1) is not None  # a refit, meanwhile
    with settling(state, sid, plan, total) as settled:
        assert not settled, "the promotion must run before the sweep completes"
    with settling(state, sid, plan, int(state.meta(sid)["total"])) as settled:
        assert settled  # counted again: nothing left
    with state.optimizer().refit_lock(sid) as held:  # a refit deciding: the coordinator asks again
        assert held
        with settling(state, sid, plan, int(state.meta(sid)["total"])) as settled:
            assert not settled


def test_the_budget_stops_the_promotions_it_cannot_pay(ladder_sweep) -> None:
    state, sid, plan = ladder_sweep(budget_limit=RUNG_COST * 2 * 1.5)  # one promotion (2 repeats) fits
    refit_sweep(state, sid)
    with settling(state, sid, plan, int(state.meta(sid)["total"])):
        pass
    promoted = _promoted(state, sid, plan)
    assert len(promoted) == 1, promoted
    messages = [e["message"] for e in state.events(sid, 50) if e["message"].startswith("ladder")]
    assert "budget left before these $24.9" in messages[0], messages


def test_the_coordinator_completes_a_ladder_sweep_only_after_its_last_promotions_ran(
    ladder_sweep,
) -> None:
    state, sid, plan = ladder_sweep()
    coordinator = ladder_sweep.coordinator  # the one serving it (it holds the sweep's lock)
    for _ in range(3):  # the first rung is done: instead of completing, it adds the last promotions
        coordinator.step(block_ms=1)
    assert state.state(sid) == "running"
    promoted = _promoted(state, sid, plan)
    assert len(promoted) == math.floor(0.2 * len(GAMMAS)), promoted
    # the QPU runs them (as a worker would): pending, or published if the coordinator serves the
    # QPU rung's queue
    waiting = [int(m) for m in state.optimizer().pending(sid)["braket_qpu"]] + state.optimizer().in_flight(
        sid
    )
    assert len(waiting) == 2 * len(promoted)
    for index in waiting:
        exp = plan.experiment(index, promoted[int(plan.point_of([index])[0])])
        state._r.zrem(state.pending_key(sid, "braket_qpu"), index)
        _finish(state, sid, exp, {"approx_ratio": 0.8})
    for _ in range(5):
        coordinator.step(block_ms=1)
        if state.state(sid) == "completed":
            break
    assert state.state(sid) == "completed", "the cap reached: nothing more to promote, the sweep ends"
    assert _promoted(state, sid, plan) == promoted
