"""Early stopping at the report vs Optuna's MedianPruner and SuccessiveHalvingPruner.

The scenario of issue 11: 30 configurations, each a run of 40 reported steps (4 s), most worse
than the median from step 5 on; grace 5 steps, 5 completed runs before the rule applies. Two
curve families with a known best:

* ``learning``: a loss curve falling towards ``4 (x - 0.7)^2`` (``curves:train``);
* ``shots``: shots as fidelity, ``1 - p(x)`` estimated from 50 more binomial shots a step, so the
  estimate's variance falls with shots (``curves:sample``).

Ours runs distributed (a private Redis, an ``orchestrator worker`` and an ``orchestrator
coordinator``, submitted through the API), sequentially (``-c 1``) and with 4 runs in flight
(``-c 4``); Optuna runs its GridSampler over the same 30 points, sequentially, with
``MedianPruner(n_startup_trials=5, n_warmup_steps=5)`` and ``SuccessiveHalvingPruner(
min_resource=5, reduction_factor=3)``.

Printed for each: runs stopped, steps executed as a share of running everything, the regret of
the best found (the true value of the configuration that completed best, minus the true best)
and wall time; then one JSON line (ours: the median rule with 4 in flight; shares and regrets
averaged over the families).

    .venv/bin/python benchmarks/early_stopping.py                 # 4-s runs, as in the issue
    .venv/bin/python benchmarks/early_stopping.py --seconds 0.4   # quicker, for development
    .venv/bin/python benchmarks/early_stopping.py --smoke         # does it still run? (seconds)
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
from harness import ROOT, orchestrator_worker, parse_args, spawn, stop, wait_until  # noqa: E402

from orchestrator.redis_server import RedisServer  # noqa: E402

PROJECT = ROOT / "benchmarks" / "projects" / "curves"
sys.path.insert(0, str(PROJECT))
from curves import loss_at, shot_curve, success_probability  # noqa: E402

N, STEPS, GRACE, MIN_COMPLETED = 30, 40, 5, 5
GRID = [round(i / (N - 1), 6) for i in range(N)]
ENTRY = {"learning": "curves:train", "shots": "curves:sample"}


def curve(family: str, x: float) -> list[float]:
    return [loss_at(x, t) for t in range(1, STEPS + 1)] if family == "learning" else shot_curve(x, STEPS)


def true_value(family: str, x: float) -> float:
    """What the configuration is really worth: its loss after all steps, or its true ``1 - p``."""
    return loss_at(x, STEPS) if family == "learning" else 1.0 - success_probability(x)


def regret(family: str, x: float) -> float:
    return true_value(family, x) - min(true_value(family, g) for g in GRID)


def sweep(seconds: float, rule: str, family: str) -> dict[str, Any]:
    return {
        "name": f"pruning-{rule}-{family}",
        "projects": [
            {
                "name": "train",
                "path": str(PROJECT),
                "entry": ENTRY[family],
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


def run_ours(seconds: float, rule: str, family: str, in_flight: int, workdir: Path) -> dict[str, Any]:
    from orchestrator.api import Orchestrator

    server = RedisServer().start()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    settings = ["--broker", server.url, "--results-dir", str(workdir / "results")]
    worker = orchestrator_worker(server.url, workdir, concurrency=in_flight)
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
            sweep_id = orch.submit(sweep(seconds, rule, family)).execution_id
            meta = f"orch:sweep:{sweep_id}:meta"
            wait_until(lambda: client.hget(meta, "state") == "completed", procs, "the sweep", 900)
            wall = time.perf_counter() - start
            frame = orch.results(sweep_id)
    finally:
        stop([coordinator, worker])
        server.stop()
    steps = frame["extra"].map(lambda e: len(json.loads(e)["intermediate"]) if isinstance(e, str) else 0)
    done = frame[frame["status"] == "completed"]
    return {
        "stopped": int((frame["status"] == "early_stopped").sum()),
        "runs": len(frame),
        "step_share": float(steps.sum()) / (N * STEPS),
        "regret": regret(family, float(done.loc[done["metric.loss"].idxmin(), "param.x"])),
        "wall": wall,
    }


def run_optuna(seconds: float, family: str, pruner: str) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        sampler=optuna.samplers.GridSampler({"x": GRID}, seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=MIN_COMPLETED, n_warmup_steps=GRACE)
        if pruner == "median"
        else optuna.pruners.SuccessiveHalvingPruner(min_resource=GRACE, reduction_factor=3),
    )
    executed = [0]

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        loss = 0.0
        for step, loss in enumerate(curve(family, x), start=1):
            time.sleep(seconds / STEPS)
            executed[0] += 1
            trial.report(loss, step)
            if trial.should_prune():
                raise optuna.TrialPruned
        return loss

    start = time.perf_counter()
    study.optimize(objective, n_trials=N, n_jobs=1)
    wall = time.perf_counter() - start
    states = [t.state for t in study.trials]
    return {
        "stopped": states.count(optuna.trial.TrialState.PRUNED),
        "runs": len(states),
        "step_share": executed[0] / (N * STEPS),
        "regret": regret(family, float(study.best_trial.params["x"])),
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
    parser.add_argument("--families", default="learning,shots", help="curve families (learning,shots)")
    parser.add_argument(
        "--in-flight", default="1,4", help="runs in flight for ours, comma-separated (the JSON: the last)"
    )
    args = parse_args(parser, smoke={"seconds": 0.02, "in_flight": "4"})
    rules, families = args.rules.split(","), args.families.split(",")
    in_flight_counts = [int(n) for n in args.in_flight.split(",")]
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for family in families:
        rows = results[family] = {}
        for rule in rules:
            for in_flight in in_flight_counts:
                with tempfile.TemporaryDirectory(prefix="bench-es-") as tmp:
                    rows[f"ours {rule}, {in_flight} in flight"] = run_ours(
                        args.seconds, rule, family, in_flight, Path(tmp)
                    )
        rows["optuna MedianPruner"] = run_optuna(args.seconds, family, "median")
        rows["optuna SuccessiveHalving"] = run_optuna(args.seconds, family, "halving")
    for family, rows in results.items():
        print(f"\n{family}: {N} runs x {STEPS} steps, {args.seconds:g} s each")
        print(f"{'':32} {'stopped':>8} {'step share':>11} {'regret':>9} {'wall s':>8}")
        for name, r in rows.items():
            print(
                f"{name:32} {r['stopped']:>5}/{r['runs']:<2} {r['step_share']:>11.1%} "
                f"{r['regret']:>9.4f} {r['wall']:>8.1f}"
            )

    def mean(name: str, key: str) -> float:
        return round(sum(results[f][name][key] for f in families) / len(families), 4)

    ours = f"ours {rules[0]}, {in_flight_counts[-1]} in flight"
    print(
        json.dumps(
            {
                "ours_step_share": mean(ours, "step_share"),
                "optuna_median_step_share": mean("optuna MedianPruner", "step_share"),
                "ours_regret": mean(ours, "regret"),
                "optuna_regret": mean("optuna MedianPruner", "regret"),
                "optuna_halving_step_share": mean("optuna SuccessiveHalving", "step_share"),
                "optuna_halving_regret": mean("optuna SuccessiveHalving", "regret"),
                "families": families,
            }
        )
    )


if __name__ == "__main__":
    main()
