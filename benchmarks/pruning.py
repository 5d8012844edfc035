"""Early stopping at the report vs Optuna's MedianPruner on the same curves and grid.

The scenario of issue 11: 30 configurations, each a training run of 40 reported steps (4 s),
most worse than the median from step 5 on; grace 5 steps, 5 completed runs before the rule
applies; 2 workers. Ours runs distributed (a private Redis, an ``orchestrator worker -c 2`` and
an ``orchestrator coordinator``, submitted through the API); Optuna runs ``MedianPruner(
n_startup_trials=5, n_warmup_steps=5)`` with its GridSampler over the same 30 points, 2 threads.

Printed side by side: runs stopped, steps executed as a share of running everything, the best
loss found (by a run that completed) and wall time; then one JSON line.

    .venv/bin/python benchmarks/pruning.py                 # 4-s runs, as in the issue (~2 min)
    .venv/bin/python benchmarks/pruning.py --seconds 0.4   # quicker, for development
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, PrivateRedis, orchestrator_worker, spawn, stop, wait_until  # noqa: E402

PROJECT = ROOT / "benchmarks" / "projects" / "curves"
sys.path.insert(0, str(PROJECT))
from curves import loss_at  # noqa: E402

N, STEPS, GRACE, MIN_COMPLETED = 30, 40, 5, 5
GRID = [round(i / (N - 1), 6) for i in range(N)]


def sweep(seconds: float, rule: str) -> dict[str, Any]:
    return {
        "name": f"pruning-{rule}",
        "projects": [
            {
                "name": "train",
                "path": str(PROJECT),
                "entry": "curves:train",
                "fixed": {"steps": STEPS, "seconds": seconds},
            }
        ],
        "parameters": {"x": GRID},
        "objectives": [{"metric": "loss", "goal": "minimize"}],
        "seed": 0,
        "optimizer": {
            "early_stopping": {
                "enabled": True,
                "rule": rule,
                "grace_steps": GRACE,
                "min_completed": MIN_COMPLETED,
                "max_stopped_share": 0.8,
            }
        },
    }


def run_ours(seconds: float, rule: str, workdir: Path) -> dict[str, Any]:
    from orchestrator.api import Orchestrator

    server = PrivateRedis(workdir)
    client = redis.Redis.from_url(server.url, decode_responses=True)
    settings = ["--broker", server.url, "--results-dir", str(workdir / "results")]
    worker = orchestrator_worker(server.url, workdir)
    coordinator = spawn(
        [sys.executable, "-m", "orchestrator.cli", "coordinator", *settings, "--state-dir", str(workdir)],
        workdir,
        "coordinator.log",
    )
    procs = [worker, coordinator]
    try:
        wait_until(lambda: client.hlen("orch:workers") and client.hlen("orch:coordinators"), procs, "workers")
        with Orchestrator(server.url, coordinate=False, results_dir=workdir / "results") as orch:
            start = time.perf_counter()
            sweep_id = orch.submit(sweep(seconds, rule)).execution_id
            meta = f"orch:sweep:{sweep_id}:meta"
            wait_until(lambda: client.hget(meta, "state") == "completed", procs, "the sweep", 900)
            wall = time.perf_counter() - start
            frame = orch.results(sweep_id)
    finally:
        stop(coordinator)
        stop(worker)
        server.close()
    steps = frame["extra"].map(lambda e: len(json.loads(e)["intermediate"]) if isinstance(e, str) else 0)
    done = frame[frame["status"] == "completed"]
    return {
        "stopped": int((frame["status"] == "early_stopped").sum()),
        "runs": len(frame),
        "step_share": float(steps.sum()) / (N * STEPS),
        "best": float(done["metric.loss"].min()),
        "wall": wall,
    }


def run_optuna(seconds: float) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        sampler=optuna.samplers.GridSampler({"x": GRID}, seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=MIN_COMPLETED, n_warmup_steps=GRACE),
    )
    executed = [0]

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        loss = 0.0
        for step in range(1, STEPS + 1):
            time.sleep(seconds / STEPS)
            executed[0] += 1
            loss = loss_at(x, step)
            trial.report(loss, step)
            if trial.should_prune():
                raise optuna.TrialPruned
        return loss

    start = time.perf_counter()
    study.optimize(objective, n_trials=N, n_jobs=2)
    wall = time.perf_counter() - start
    states = [t.state for t in study.trials]
    return {
        "stopped": states.count(optuna.trial.TrialState.PRUNED),
        "runs": len(states),
        "step_share": executed[0] / (N * STEPS),
        "best": float(study.best_value),
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one full run (default 4)")
    parser.add_argument(
        "--rules", default="median", help="our rules to run, comma-separated (median,percentile,asha)"
    )
    args = parser.parse_args()
    true_best = min(loss_at(x, STEPS) for x in GRID)
    results: dict[str, dict[str, Any]] = {}
    for rule in args.rules.split(","):
        with tempfile.TemporaryDirectory(prefix="bench-pruning-") as tmp:
            results[f"ours ({rule})"] = run_ours(args.seconds, rule, Path(tmp))
    results["optuna MedianPruner"] = run_optuna(args.seconds)
    print(f"\n{N} runs x {STEPS} steps, {args.seconds:g} s each, 2 workers; true best loss {true_best:.6f}")
    print(f"{'':24} {'stopped':>8} {'step share':>11} {'best found':>11} {'wall s':>8}")
    for name, r in results.items():
        print(
            f"{name:24} {r['stopped']:>5}/{r['runs']:<2} {r['step_share']:>11.1%} {r['best']:>11.6f} {r['wall']:>8.1f}"
        )
    ours = results[f"ours ({args.rules.split(',')[0]})"]
    optuna_r = results["optuna MedianPruner"]
    print(
        json.dumps(
            {
                "ours_stopped": ours["stopped"],
                "optuna_stopped": optuna_r["stopped"],
                "ours_step_share": round(ours["step_share"], 4),
                "optuna_median_step_share": round(optuna_r["step_share"], 4),
                "ours_best": ours["best"],
                "optuna_best": optuna_r["best"],
                "same_best": abs(ours["best"] - optuna_r["best"]) < 1e-12,
                "ours_wall_s": round(ours["wall"], 2),
                "optuna_wall_s": round(optuna_r["wall"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
