"""Early stopping on curve families that differ in kind, decided by real workers at each report.

No completed curve is seeded: the first runs are judged against every run that reached their step
(running, stopped or complete), and the curve model guards the slow starters that end best.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import yaml

from orchestrator import Orchestrator
from orchestrator.store import SweepState, connect
from tests.conftest import FIXTURES, cli

CURVES = str(FIXTURES / "projects" / "curves")


def _sweep(entry: str, xs: list[float], steps: int, **early: Any) -> dict[str, Any]:
    return {
        "name": f"family-{entry}",
        "projects": [
            {
                "name": "train",
                "path": CURVES,
                "entry": f"curves:{entry}",
                "fixed": {"steps": steps, "pause": 0.04},
            }
        ],
        "parameters": {"x": xs},
        "objectives": [{"metric": "loss", "goal": "minimize"}],
        "seed": 3,
        "optimizer": {"early_stopping": {"enabled": True, "grace_steps": 3, "min_completed": 5, **early}},
    }


def _run(redis_url: str, sweep: dict[str, Any], **orch: Any):
    with Orchestrator(redis_url, optimizer_interval=3600, publish_window=2, **orch) as o:
        sid = o.submit(sweep).execution_id
        final = o.wait(sid, timeout=240)
        return sid, final, o.results(sid)


def _steps(frame) -> dict[float, int]:
    return {
        float(x): len(json.loads(extra)["intermediate"])
        for x, extra in zip(frame["param.x"], frame["extra"], strict=True)
    }


def _shared_transient(redis_url: str, start_worker, adaptive: bool) -> None:
    start_worker("transient", concurrency=2)
    xs = [round(i / 14, 4) for i in range(15)]
    random.Random(2).shuffle(xs)  # without the model, runs go in the order given
    steps = 15
    sweep = {**_sweep("transient", xs, steps), "adaptive_sampling": adaptive}
    _, final, frame = _run(redis_url, sweep)
    assert final.state == "completed"
    finals = {x: 0.2 * (x - 0.7) ** 2 for x in xs}
    median = sorted(finals.values())[len(xs) // 2]
    worse = [x for x in xs if finals[x] > median]
    ran = _steps(frame)
    status = dict(zip(frame["param.x"].astype(float), frame["status"], strict=True))
    early = [x for x in worse if status[x] == "early_stopped" and ran[x] <= steps // 3]
    assert len(early) >= len(worse) / 2, (
        f"{len(early)} of the {len(worse)} runs worse than the median stopped by step {steps // 3}: "
        f"{sorted((x, status[x], ran[x]) for x in worse)}"
    )
    best = min(xs, key=finals.__getitem__)
    assert status[best] == "completed", "the best run goes on"


def test_on_a_shared_transient_the_median_rule_stops_the_worse_half_early(
    redis_url: str, start_worker
) -> None:
    # every curve falls by 2.0, and their finals differ by at most 0.1: a peer's running average
    # trails by about the whole spread, so only best-so-far against best-so-far can judge early
    _shared_transient(redis_url, start_worker, adaptive=True)


def test_the_rules_stop_runs_with_adaptive_sampling_off(redis_url: str, start_worker) -> None:
    _shared_transient(redis_url, start_worker, adaptive=False)


#: crossing curves in this order (adaptive sampling off): five runs are its peers before the best
#: (x = 0.7), which falls slowest: it is the worst run until about step 12 and the best at 25
CROSSING = [0.0, 0.45, 0.2, 0.95, 0.35, 0.7, 0.1, 0.9, 0.3, 1.0, 0.4]


def _crossing(redis_url: str, start_worker, **early: Any) -> dict[float, str]:
    start_worker("crossing", concurrency=2)
    _, final, frame = _run(
        redis_url, {**_sweep("crossing", CROSSING, 25, **early), "adaptive_sampling": False}
    )
    assert final.state == "completed"
    return dict(zip(frame["param.x"].astype(float), frame["status"], strict=True))


def test_on_crossing_curves_the_best_run_is_never_stopped(redis_url: str, start_worker) -> None:
    status = _crossing(redis_url, start_worker)
    assert status[0.7] == "completed", sorted(status.items())
    assert list(status.values()).count("early_stopped") >= 3, "the curve model still lets the rule stop runs"


def test_without_the_curve_model_the_rule_stops_the_crossing_best(redis_url: str, start_worker) -> None:
    # what the test above guards against: the family is a real crossing
    status = _crossing(redis_url, start_worker, curve_model=False)
    assert status[0.7] == "early_stopped", sorted(status.items())


def test_a_final_step_report_is_never_judged(redis_url: str, start_worker) -> None:
    # completed curves (seeded) sit at 1.0 and fall to 0.0 at their last step, 10; every run
    # reports x < 1 at each step: worse than them only at step 10, its last report
    sweep = _sweep("flat", [0.5, 0.6, 0.7, 0.8, 0.9], 10, curve_model=False, min_completed=3)
    sweep["adaptive_sampling"] = False
    with Orchestrator(redis_url, optimizer_interval=3600, publish_window=2) as o:
        sid = o.submit(sweep).execution_id
        store = SweepState(connect(redis_url)).pruning()
        for i in range(9):  # enough that the runs' own curves never move the median
            store.add_completed(
                sid, f"seed{i}", {f"step:{t}": 1.0 if t < 10 else 0.0 for t in range(1, 11)}, 10
            )
        start_worker("final", concurrency=2)
        final = o.wait(sid, timeout=240)
        frame = o.results(sid)
    assert final.state == "completed"
    assert (frame["status"] == "completed").all(), frame[["param.x", "status"]]
    assert set(_steps(frame).values()) == {10}
    assert final.early_stopping == {}, "nothing stopped, nothing refused"


def test_the_caps_refusals_are_counted_and_shown(workdir: Path, redis_url: str, start_worker) -> None:
    start_worker("cap", concurrency=2)
    xs = [round(i / 14, 4) for i in range(15)]
    _, final, frame = _run(redis_url, _sweep("transient", xs, 15, max_stopped_share=0.2))
    assert final.state == "completed"
    stopped = int((frame["status"] == "early_stopped").sum())
    assert stopped == math.floor(0.2 * len(xs))
    refused = final.early_stopping["cap_refused"]
    assert refused >= 1, final.early_stopping
    shown = cli("status", final.execution_id, workdir=workdir, ORCHESTRATOR_BROKER_URL=redis_url)
    assert shown.returncode == 0, shown.stderr
    assert f"cap refused {refused} stops" in " ".join(shown.stdout.split())


def test_shots_as_a_budget_without_the_model_exits_2(workdir: Path) -> None:
    bell = str(FIXTURES.parent.parent / "examples" / "projects" / "bell")
    sweep = {
        "name": "no-model",
        "adaptive_sampling": False,
        "projects": [{"name": "bell", "path": bell, "entry": "bell:run"}],
        "parameters": {"noise": [0.0, 0.1], "shots": [400]},
        "objectives": [{"metric": "p_correlated", "goal": "maximize"}],
        "optimizer": {"early_stopping": {"enabled": True, "low_fidelity_share": 0.25}},
    }
    path = workdir / "no-model.yaml"
    path.write_text(yaml.safe_dump(sweep))
    proc = cli("check", str(path), workdir=workdir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = " ".join(proc.stderr.split())
    assert "optimizer.early_stopping.low_fidelity_share" in message and "adaptive_sampling" in message
