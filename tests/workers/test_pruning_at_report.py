"""Early stopping decided by real workers at each report, against the shared store."""

from __future__ import annotations

import json
import math
from pathlib import Path

from orchestrator import Orchestrator
from orchestrator.optimizer.early_stopping import MedianRule
from orchestrator.store import SweepState, connect
from tests.conftest import FIXTURES, bell_shots_sweep, cli

CURVES = str(FIXTURES / "projects" / "curves")
GRACE = 3


def _sweep(xs: list[float], share: float) -> dict:
    return {
        "name": "curves",
        "projects": [
            {"name": "train", "path": CURVES, "entry": "curves:train", "fixed": {"steps": 20, "pause": 0.05}}
        ],
        "parameters": {"x": xs},
        "objectives": [{"metric": "loss", "goal": "minimize"}],
        "seed": 1,
        "optimizer": {
            "early_stopping": {
                "enabled": True,
                "grace_steps": GRACE,
                "min_completed": 3,
                "max_stopped_share": share,
                "curve_model": False,  # the seeded curves carry no predicted ends
            }
        },
    }


def _seed_good_curves(redis_url: str, sweep_id: str) -> None:
    """Three completed curves far better than any run of the sweep: the rule fires at the grace step."""
    rule = MedianRule(GRACE, 3)
    store = SweepState(connect(redis_url)).pruning()
    for i in range(3):
        curve = [0.2 / step for step in range(1, 21)]  # loss of x = 0.7, the best point
        store.add_completed(sweep_id, f"seed{i}", rule.completed_entries(curve), steps=len(curve))


def _run(redis_url: str, start_worker, xs: list[float], share: float, workers: int):
    # No worker runs anything until the completed curves are in place (deterministic decisions);
    # refits are rare, so every stop is a worker's decision at a report.
    with Orchestrator(redis_url, optimizer_interval=3600, publish_window=4) as orch:
        sid = orch.submit(_sweep(xs, share)).execution_id
        _seed_good_curves(redis_url, sid)
        for w in range(workers):
            start_worker(f"prune{w}", concurrency=2)
        final = orch.wait(sid, timeout=240)
        return sid, final, orch.results(sid)


def test_runs_stop_at_the_report_where_the_rule_fires(workdir: Path, redis_url: str, start_worker) -> None:
    # 1-s runs of 20 reports, all worse than the seeded curves from the first step
    xs = [0.0, 0.1, 0.2, 0.3, 0.4, 1.0]
    sid, final, frame = _run(redis_url, start_worker, xs, share=1.0, workers=1)
    assert final.state == "completed"
    stopped = frame[frame["status"] == "early_stopped"]
    assert len(stopped) == len(xs), frame[["param.x", "status"]]
    for _, row in stopped.iterrows():
        curve = json.loads(row["extra"])["intermediate"]
        assert len(curve) == GRACE, f"stopped at report {len(curve)}, the rule fired at {GRACE}"
        assert row["metric.loss"] == curve[-1], "a stopped run keeps its last reported metrics"
        assert "median rule" in row["error_message"]

    # status: which rule stopped how many runs, at which step, and the steps that saved
    summary = final.early_stopping
    assert summary["rules"] == {"median": {"stopped": 6, "step_median": 3.0, "step_min": 3, "step_max": 3}}
    assert summary["full_steps"] == 20 and summary["steps_saved"] == 6 * (20 - GRACE)
    assert summary["steps_saved_share"] == (20 - GRACE) / 20
    shown = cli("status", sid, workdir=workdir, ORCHESTRATOR_BROKER_URL=redis_url)
    assert shown.returncode == 0, shown.stderr
    line = " ".join(shown.stdout.split())
    assert "early stopping median stopped 6 at step 3 (min 3, max 3); 102 steps saved (85% of running" in line


def test_racing_workers_never_stop_more_than_max_stopped_share(
    workdir: Path, redis_url: str, start_worker
) -> None:
    xs = [round(0.02 * i, 2) for i in range(12)]  # 12 runs, every one worse than the seeded curves
    share = 0.25
    _, final, frame = _run(redis_url, start_worker, xs, share=share, workers=2)  # 4 runs at a time
    assert final.state == "completed"
    stopped = int((frame["status"] == "early_stopped").sum())
    assert stopped == math.floor(share * len(xs)), "the cap is reached, and never passed"
    assert len(frame) == len(xs) and frame["experiment_id"].is_unique


def test_the_best_run_is_never_stopped_on_curves_where_it_is_best_at_every_step(
    workdir: Path, redis_url: str, start_worker
) -> None:
    start_worker("best", concurrency=2)
    xs = [0.7, *[round(0.05 * i, 2) for i in range(10)]]
    with Orchestrator(redis_url, optimizer_interval=3600, publish_window=2) as orch:
        sid = orch.submit(_sweep(xs, share=0.9)).execution_id
        final = orch.wait(sid, timeout=240)
        frame = orch.results(sid)
    assert final.state == "completed"
    best = frame[frame["param.x"] == 0.7]
    assert (best["status"] == "completed").all()


def test_low_shot_rungs_promote_and_stop_without_a_refit(workdir: Path, redis_url: str, start_worker) -> None:
    start_worker("rung", concurrency=2)
    sweep = bell_shots_sweep("rungs", 12, min_completed=3, reduction_factor=3)
    # one refit an hour: the refit that would decide low-shot runs never comes
    with Orchestrator(redis_url, optimizer_interval=3600, publish_window=2) as orch:
        sid = orch.submit(sweep).execution_id
        final = orch.wait(sid, timeout=240)
        frame = orch.results(sid)
        refits = len(SweepState(connect(redis_url)).optimizer().history(sid))
    assert final.state == "completed", "every low-shot run was promoted or stopped by its rung"
    assert refits <= 1, "decided by the rungs, not by refits"
    stopped = frame[frame["status"] == "early_stopped"]
    full = frame[frame["status"] == "completed"]
    assert 1 <= len(stopped) <= 6 and len(full) + len(stopped) == 12
    assert (full["param.shots"] == 400).all() and (stopped["param.shots"] == 100).all()
    assert 0.0 in set(full["param.noise"]), "the best point (no noise) goes on to full shots"


def test_unknown_rule_exits_2_naming_the_choices(workdir: Path, redis_url: str) -> None:
    import yaml

    sweep = _sweep([0.1, 0.2], share=0.5)
    sweep["optimizer"]["early_stopping"]["rule"] = "hyperband"
    path = workdir / "curves.yaml"
    path.write_text(yaml.safe_dump(sweep))
    proc = cli("check", str(path), workdir=workdir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = " ".join(proc.stderr.split())  # the terminal wraps long messages
    assert "'median', 'percentile' or 'asha'" in message and "optimizer.early_stopping.rule" in message
