"""The optimizer against live sweep state in a real Redis, and through a real worker."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from core.plan import SweepPlan
from orchestrator import Orchestrator
from orchestrator.optimizer import GPOptimizer
from orchestrator.optimizer.service import observations, refit_sweep
from orchestrator.store import SweepState, connect
from tests.conftest import FIXTURES, bell_shots_sweep, cli
from tests.support.sweep_state import filled_sweep

ANALYTIC = str(FIXTURES / "projects" / "analytic")


def _sweep(num: int = 21, delay: float | None = None, **extra) -> dict:
    """The analytic project over an x-y grid of ``num`` x ``num``, each run taking ``delay`` s."""
    project = {"name": "f", "path": ANALYTIC, "entry": "analytic:run"}
    if delay is not None:
        project["fixed"] = {"delay": delay}
    return {
        "name": "analytic",
        "projects": [project],
        "parameters": {"x": {"start": 0, "stop": 1, "num": num}, "y": {"start": 0, "stop": 1, "num": num}},
        "objectives": [{"metric": "score", "goal": "maximize"}],
        "seed": 3,
        **extra,
    }


def _state_with_results(
    redis_url: str, tmp_path: Path, n_results: int = 12, **extra
) -> tuple[SweepState, str, SweepPlan]:
    """A registered, filled sweep (nothing published) with ``n_results`` finished experiments."""
    sweep = filled_sweep(redis_url, tmp_path / "results", _sweep(**extra))
    state, sid, plan = sweep.state, sweep.sid, sweep.plan
    members = (
        [int(m) for m in connect(redis_url).zrange(state.pending_key(sid, "local_cpu"), 0, n_results - 1)]
        if n_results
        else []
    )
    for index in members:
        p = plan.experiment(index).parameters
        _record(
            state,
            sid,
            plan,
            index,
            "completed",
            {"score": float(np.exp(-((p["x"] - 0.7) ** 2 + (p["y"] - 0.2) ** 2) / 0.05))},
        )
    state.set_state(sid, "running")
    return state, sid, plan


def _record(
    state: SweepState, sid: str, plan: SweepPlan, index: int, status: str, metrics: dict, **extra
) -> str:
    """Take ``index`` off the pending set and record it as a worker would; returns its experiment id."""
    exp = plan.experiment(index)
    state._r.zrem(state.pending_key(sid, "local_cpu"), index)
    row = {"index": index, "experiment_id": exp.experiment_id, "status": status, "parameters": exp.parameters}
    state.record(
        sid,
        index,
        exp.experiment_id,
        {**row, "metrics": metrics, **extra},
        status=status,
        final=status == "completed",
    )
    return exp.experiment_id


def test_refit_rescores_pending_and_records_history(redis_url: str, tmp_path: Path) -> None:
    state, sid, plan = _state_with_results(redis_url, tmp_path)
    before = set(connect(redis_url).zrange(state.pending_key(sid, "local_cpu"), 0, -1))
    rec = refit_sweep(state, sid)
    assert rec is not None and rec.phase == "model"
    after = connect(redis_url).zrange(state.pending_key(sid, "local_cpu"), 0, -1, withscores=True)
    assert {m for m, _ in after} == before, "re-scoring never adds or drops pending experiments"
    best = [plan.experiment(int(m)).parameters for m, _ in sorted(after, key=lambda kv: -kv[1])[:5]]
    assert any(abs(p["x"] - 0.7) <= 0.25 and abs(p["y"] - 0.2) <= 0.25 for p in best), best
    meta = json.loads(state.meta(sid)["optimizer"])
    assert meta["incumbent"] and meta["promising_regions"] and meta["summary"]
    assert meta["sampler"] == "gp" and meta["kernels"]["objective"]["length_scales"]
    assert connect(redis_url).llen(state.key(sid, "optimizer:history")) == 1


@pytest.mark.parametrize("sampler, phase", [("random", "random"), ("sobol", "space_filling")])
def test_refit_uses_the_sampler_the_sweep_chooses(
    sampler: str, phase: str, redis_url: str, tmp_path: Path
) -> None:
    state, sid, plan = _state_with_results(redis_url, tmp_path, optimizer={"sampler": sampler})
    rec = refit_sweep(state, sid)
    assert rec is not None and rec.sampler == sampler and rec.phase == phase
    assert rec.incumbent is None and not rec.promising_regions, "no model behind these samplers"
    # what landed in Redis is that sampler's order, not the GP's
    after = connect(redis_url).zrange(state.pending_key(sid, "local_cpu"), 0, -1, withscores=True)
    points = plan.point_of(np.asarray([int(m) for m, _ in after]))
    assert after and [s for _, s in after] == [rec.priority_adjustments[int(p)] for p in points]
    gp = GPOptimizer(plan.config, plan.space).analyze_results(observations(state, sid), points)
    assert gp.phase == "model" and rec.top(5) != gp.top(5)
    meta = json.loads(state.meta(sid)["optimizer"])
    assert meta["sampler"] == sampler and meta["phase"] == phase


def test_two_beats_at_once_do_not_corrupt_priorities(redis_url: str, tmp_path: Path) -> None:
    state, sid, _ = _state_with_results(redis_url, tmp_path)
    refit_sweep(state, sid)
    reference = dict(connect(redis_url).zrange(state.pending_key(sid, "local_cpu"), 0, -1, withscores=True))
    barrier = threading.Barrier(2)
    outcomes: list = []

    def beat() -> None:
        barrier.wait()
        outcomes.append(refit_sweep(SweepState(connect(redis_url)), sid))

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = dict(connect(redis_url).zrange(state.pending_key(sid, "local_cpu"), 0, -1, withscores=True))
    assert after.keys() == reference.keys()
    assert after == pytest.approx(reference), "the same state gives the same scores, whoever refits"
    assert sum(o is not None for o in outcomes) >= 1


def test_adaptive_sweep_through_a_worker_reports_best_and_regions(
    workdir: Path, redis_url: str, start_worker
) -> None:
    start_worker("opt", concurrency=2)
    sweep = _sweep(6, 0.15, optimizer={"startup_points": 6, "refinement": True, "refinement_points": 2})
    with Orchestrator(redis_url, optimizer_interval=0.5, publish_window=2) as orch:
        sid = orch.submit(sweep).execution_id
        final = orch.wait(sid, timeout=240)
        frame = orch.results(sid)
    assert final.state == "completed"
    assert final.optimizer.get("incumbent") and final.optimizer.get("phase") == "model"
    assert (frame["status"] == "completed").all()
    if frame["added"].any():  # refinement points run like any other and are marked
        added = frame[frame["added"]]
        assert added["param.x"].between(0, 1).all() and added["param.y"].between(0, 1).all()
    assert frame["metric.score"].max() > 0.7


@pytest.mark.parametrize(
    "change, field",
    [
        ({"optimizer": {"coverage_share": 1.5}}, "optimizer.coverage_share"),
        (  # checked against declared metrics: validation never runs a project to learn them
            {
                "objectives": [{"metric": "fidelity"}],
                "projects": [
                    {"name": "f", "path": ANALYTIC, "entry": "analytic:run", "metrics": {"score": "score"}}
                ],
            },
            "objectives[0].metric",
        ),
        ({"optimizer": {"startup_points": 500}}, "optimizer.startup_points"),
        ({"optimizer": {"sampler": "tpe"}}, "optimizer.sampler"),
        ({"optimizer": {"sampler": "random", "refinement": True}}, "optimizer.refinement"),
    ],
)
def test_bad_optimizer_config_exits_2(change: dict, field: str, workdir: Path, redis_url: str) -> None:
    import redis
    import yaml

    path = workdir / "adaptive.yaml"
    path.write_text(yaml.safe_dump(_sweep(**change)))
    proc = cli("run", str(path), "--broker", redis_url, workdir=workdir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert field in proc.stderr and "adaptive.yaml" in proc.stderr
    assert redis.Redis.from_url(redis_url).dbsize() == 0


def test_shots_as_a_budget_low_fidelity_first_then_promote_or_stop(
    workdir: Path, redis_url: str, start_worker
) -> None:
    start_worker("fid", concurrency=2)
    sweep = bell_shots_sweep("bell-shots", 24)
    with Orchestrator(redis_url, optimizer_interval=0.3, publish_window=2) as orch:
        sid = orch.submit(sweep).execution_id
        final = orch.wait(sid, timeout=240)
        frame = orch.results(sid)
    assert final.state == "completed"
    assert final.counts["completed"] + final.counts["early_stopped"] == 24
    partial = frame[frame["status"] == "partial"]
    assert len(partial) == 24 and (partial["param.shots"] == 100).all(), "every experiment ran at 25 % first"
    full = frame[frame["status"] == "completed"]
    assert (full["param.shots"] == 400).all() and len(full) == final.counts["completed"]
    stopped = frame[frame["status"] == "early_stopped"]
    assert len(stopped) <= 12, "never more than max_stopped_share"
    assert stopped["metric.p_correlated"].notna().all(), "stopped experiments keep their partial metrics"
    assert 0.0 in set(full["param.noise"]), "the best point (no noise) is never stopped"


def test_low_fidelity_decisions_stop_with_partial_metrics_or_promote(redis_url: str, tmp_path: Path) -> None:
    from orchestrator.optimizer.recommendation import EarlyStop, OptimizationRecommendation
    from orchestrator.optimizer.service import decide_low_fidelity

    state, sid, plan = _state_with_results(redis_url, tmp_path, n_results=0)
    low = [int(m) for m in connect(redis_url).zrange(state.pending_key(sid, "local_cpu"), 0, 1)]
    ids = {}
    for index in low:
        ids[index] = _record(
            state, sid, plan, index, "partial", {"score": 0.1}, extra={"shot_fraction": 0.25}
        )
        connect(redis_url).hset(state.key(sid, "stage"), index, "low_done")
    stop, promote = low
    rec = OptimizationRecommendation(
        priority_adjustments={}, early_stops=(EarlyStop(ids[stop], "not promoted"),)
    )
    assert decide_low_fidelity(state, sid, plan, rec, low) == (1, 1)
    assert connect(redis_url).hget(state.key(sid, "terminal"), stop) == "early_stopped"
    kept = json.loads(connect(redis_url).hget(state.key(sid, "obs"), stop))
    assert kept["status"] == "early_stopped" and kept["metrics"] == {"score": 0.1}, "partial metrics kept"
    assert connect(redis_url).zscore(state.pending_key(sid, "local_cpu"), promote) == 2.0, (
        "promoted runs next"
    )
    assert connect(redis_url).hget(state.key(sid, "stage"), promote) == "full"
    assert not connect(redis_url).hexists(state.key(sid, "terminal"), promote)


def test_median_rule_stops_running_experiments_that_report_a_poor_curve(
    workdir: Path, redis_url: str, start_worker
) -> None:
    start_worker("median", concurrency=2)
    curves = str(FIXTURES / "projects" / "curves")
    sweep = {
        "name": "curves",
        "projects": [{"name": "train", "path": curves, "entry": "curves:train"}],
        "parameters": {"x": {"start": 0.0, "stop": 1.0, "num": 16}},
        "objectives": [{"metric": "loss", "goal": "minimize"}],
        "seed": 1,
        "optimizer": {
            "startup_points": 4,
            "early_stopping": {
                "enabled": True,
                "grace_steps": 3,
                "min_completed": 3,
                "max_stopped_share": 0.5,
            },
        },
    }
    with Orchestrator(redis_url, optimizer_interval=0.3, publish_window=2) as orch:
        sid = orch.submit(sweep).execution_id
        final = orch.wait(sid, timeout=240)
        frame = orch.results(sid)
    assert final.state == "completed"
    assert len(frame) == 16 and frame["experiment_id"].is_unique, "one row per experiment"
    stopped = frame[frame["status"] == "early_stopped"]
    assert 1 <= len(stopped) <= 8, "the rule stopped some runs, never more than max_stopped_share"
    lengths = []
    for _, row in stopped.iterrows():
        curve = json.loads(row["extra"])["intermediate"]
        lengths.append(len(curve))
        # decided at a report: after the grace steps; at the last report a stop saves nothing
        assert 3 <= len(curve) <= 20, "stopped after its grace steps"
        assert row["metric.loss"] == pytest.approx(curve[-1]), "the partial row keeps the last reported loss"
    assert min(lengths) < 20, f"the rule saved steps: stopped at {sorted(lengths)}"
    completed = frame[frame["status"] == "completed"]
    best_x = frame.loc[(frame["param.x"] - 0.7).abs().idxmin(), "param.x"]
    assert best_x in set(completed["param.x"]), "the best point is never stopped"
    assert (completed["extra"].map(lambda e: len(json.loads(e)["intermediate"])) == 20).all()


def test_unknown_sampler_names_the_choices(workdir: Path, redis_url: str) -> None:
    import yaml

    path = workdir / "adaptive.yaml"
    path.write_text(yaml.safe_dump(_sweep(optimizer={"sampler": "tpe"})))
    proc = cli("check", str(path), workdir=workdir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "'gp', 'random' or 'sobol'" in proc.stderr and "'tpe'" in proc.stderr


def test_sweep_with_the_sobol_sampler_runs_end_to_end(workdir: Path, redis_url: str, start_worker) -> None:
    start_worker("sobol", concurrency=2)
    sweep = _sweep(5, 0.05, optimizer={"sampler": "sobol", "early_stopping": {"enabled": True}})
    with Orchestrator(redis_url, optimizer_interval=0.3, publish_window=2) as orch:
        sid = orch.submit(sweep).execution_id
        final = orch.wait(sid, timeout=240)
        frame = orch.results(sid)
        history = [
            json.loads(v) for v in connect(redis_url).lrange(orch.state.key(sid, "optimizer:history"), 0, -1)
        ]
    assert final.state == "completed"
    assert len(frame) == 25 and (frame["status"] == "completed").all()
    assert history, "the optimizer refitted while the sweep ran"
    assert {h["sampler"] for h in history} == {"sobol"} and {h["phase"] for h in history} == {"space_filling"}
    assert final.optimizer["sampler"] == "sobol"
