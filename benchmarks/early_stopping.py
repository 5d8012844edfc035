"""Early stopping at the report vs Optuna's pruners, on five curve families with a known best.

30 configurations, each a run of 40 reported steps; grace 5 steps, 5 completed runs (Optuna's
``n_startup_trials``) before finished curves alone decide. The families (see
``benchmarks/projects/curves/curves.py``): ``learning`` (a small shared fall), ``transient`` (a
shared fall 20 times the spread of final values), ``crossing`` (the best runs start slowest and
cross the others near step 15), ``noisy`` (noise comparable to the spread) and ``shots`` (shots
as fidelity: a binomial estimate whose variance falls with shots).

Ours runs distributed (a private Redis, an ``orchestrator worker -c N`` and an ``orchestrator
coordinator``, submitted through the API) with 1, 2 and 4 runs in flight, with the default rule
(median, best so far against best so far, the curve model on). Optuna runs its GridSampler over
the same 30 points with ``MedianPruner(n_startup_trials=5, n_warmup_steps=5)``,
``PercentilePruner(25, ...)`` (the same), ``SuccessiveHalvingPruner(min_resource=5,
reduction_factor=3)`` and ``HyperbandPruner(min_resource=5, max_resource=40,
reduction_factor=3)``, sequentially and with ``n_jobs=2``.

Printed per family: runs stopped, steps executed as a share of running everything, the regret
of the best found (the true value of the configuration that completed best, minus the true best;
``noisy``: the noise-free value, so a regret within the noise, sd 0.08, is a draw), whether the
true best run was stopped, and wall time. The last line is JSON: per family, ours with 2 in
flight against Optuna's MedianPruner and SuccessiveHalvingPruner with ``n_jobs=2``.

    .venv/bin/python benchmarks/early_stopping.py --seconds 0.4   # about 10 minutes
    .venv/bin/python benchmarks/early_stopping.py --smoke         # does it still run? (seconds)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, orchestrator_worker, parse_args, spawn, stop, wait_until  # noqa: E402

from orchestrator.redis_server import RedisServer  # noqa: E402

PROJECT = ROOT / "benchmarks" / "projects" / "curves"
sys.path.insert(0, str(PROJECT))
from curves import FAMILIES, curve, true_value  # noqa: E402

N, STEPS, GRACE, MIN_COMPLETED = 30, 40, 5, 5
GRID = [round(i / (N - 1), 6) for i in range(N)]
PRUNERS = ("MedianPruner", "PercentilePruner(25)", "SuccessiveHalvingPruner", "HyperbandPruner")


def regret(family: str, x: float) -> float:
    return true_value(family, x, STEPS) - min(true_value(family, g, STEPS) for g in GRID)


def true_best(family: str) -> float:
    return min(GRID, key=lambda g: true_value(family, g, STEPS))


def sweep(seconds: float, family: str, in_flight: int) -> dict[str, Any]:
    return {
        "name": f"pruning-{family}-{in_flight}",
        "projects": [
            {
                "name": f"train-{family}",  # a project per family: its runs are its own
                "path": str(PROJECT),
                "entry": "curves:run",
                "fixed": {"family": family, "steps": STEPS, "seconds": seconds},
            }
        ],
        "parameters": {"x": GRID},
        "objectives": [{"metric": "loss", "goal": "minimize"}],
        "seed": 0,
        "optimizer": {
            # a seeded random order, as Optuna's GridSampler: the benchmark measures the stopping;
            # the model would run the promising points first, and they are seldom worth stopping
            "sampler": "random",
            "early_stopping": {"enabled": True, "grace_steps": GRACE, "min_completed": MIN_COMPLETED},
        },
    }


def run_ours(seconds: float, families: list[str], in_flight: int, workdir: Path) -> dict[str, dict[str, Any]]:
    """Every family, one after the other, on one deployment with ``in_flight`` worker processes."""
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
    out: dict[str, dict[str, Any]] = {}
    try:
        wait_until(lambda: client.hlen("orch:workers") and client.hlen("orch:coordinators"), procs, "workers")
        with Orchestrator(server.url, coordinate=False, results_dir=workdir / "results") as orch:
            for family in families:
                start = time.perf_counter()
                sweep_id = orch.submit(sweep(seconds, family, in_flight)).execution_id
                meta = f"orch:sweep:{sweep_id}:meta"
                wait_until(lambda m=meta: client.hget(m, "state") == "completed", procs, "the sweep", 900)
                wall = time.perf_counter() - start
                frame = orch.results(sweep_id)
                refused = orch.status(sweep_id).early_stopping.get("cap_refused", 0)
                out[family] = _ours_row(family, frame, wall, refused)
    finally:
        stop([coordinator, worker])
        server.stop()
    return out


def _ours_row(family: str, frame: Any, wall: float, refused: int) -> dict[str, Any]:
    steps = frame["extra"].map(lambda e: len(json.loads(e)["intermediate"]) if isinstance(e, str) else 0)
    done = frame[frame["status"] == "completed"]
    stopped = frame[frame["status"] == "early_stopped"]
    return {
        "stopped": len(stopped),
        "runs": len(frame),
        "step_share": float(steps.sum()) / (N * STEPS),
        "regret": regret(family, float(done.loc[done["metric.loss"].idxmin(), "param.x"])),
        "best_stopped": bool((abs(stopped["param.x"] - true_best(family)) < 1e-6).any()),
        "cap_refused": refused,
        "wall": wall,
    }


def _pruner(name: str) -> Any:
    import optuna

    if name == "MedianPruner":
        return optuna.pruners.MedianPruner(n_startup_trials=MIN_COMPLETED, n_warmup_steps=GRACE)
    if name == "PercentilePruner(25)":
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=MIN_COMPLETED, n_warmup_steps=GRACE)
    if name == "SuccessiveHalvingPruner":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=GRACE, reduction_factor=3)
    return optuna.pruners.HyperbandPruner(min_resource=GRACE, max_resource=STEPS, reduction_factor=3)


def run_optuna(seconds: float, family: str, pruner: str, n_jobs: int) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        sampler=optuna.samplers.GridSampler({"x": GRID}, seed=0), pruner=_pruner(pruner)
    )
    executed, lock = [0], threading.Lock()

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        loss = 0.0
        for step, loss in enumerate(curve(family, x, STEPS), start=1):
            time.sleep(seconds / STEPS)
            with lock:
                executed[0] += 1
            trial.report(loss, step)
            if trial.should_prune():
                raise optuna.TrialPruned
        return loss

    start = time.perf_counter()
    study.optimize(objective, n_trials=N, n_jobs=n_jobs)
    wall = time.perf_counter() - start
    pruned = [t.params["x"] for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    return {
        "stopped": len(pruned),
        "runs": len(study.trials),
        "step_share": executed[0] / (N * STEPS),
        "regret": regret(family, float(study.best_trial.params["x"])),
        "best_stopped": any(abs(x - true_best(family)) < 1e-6 for x in pruned),
        "cap_refused": 0,
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=0.4, help="length of one full run (default 0.4)")
    parser.add_argument("--families", default=",".join(FAMILIES), help="curve families, comma-separated")
    parser.add_argument("--in-flight", default="1,2,4", help="runs in flight for ours (the JSON: 2)")
    parser.add_argument("--pruners", default=",".join(PRUNERS), help="Optuna's pruners, comma-separated")
    parser.add_argument("--jobs", default="1,2", help="Optuna's n_jobs settings, comma-separated")
    args = parse_args(
        parser,
        smoke={
            "seconds": 0.02,
            "families": "transient,crossing",
            "in_flight": "2",
            "pruners": "MedianPruner,SuccessiveHalvingPruner",
            "jobs": "2",
        },
    )
    families, pruners = args.families.split(","), args.pruners.split(",")
    in_flight_counts, jobs = (
        [int(n) for n in args.in_flight.split(",")],
        [int(n) for n in args.jobs.split(",")],
    )
    results: dict[str, dict[str, dict[str, Any]]] = {f: {} for f in families}
    for in_flight in in_flight_counts:
        with tempfile.TemporaryDirectory(prefix="bench-es-") as tmp:
            for family, row in run_ours(args.seconds, families, in_flight, Path(tmp)).items():
                results[family][f"ours median, {in_flight} in flight"] = row
    for family in families:
        for pruner in pruners:
            for n_jobs in jobs:
                name = f"optuna {pruner}" + (f", n_jobs={n_jobs}" if n_jobs > 1 else "")
                results[family][name] = run_optuna(args.seconds, family, pruner, n_jobs)
    for family, rows in results.items():
        print(f"\n{family}: {N} runs x {STEPS} steps, {args.seconds:g} s each")
        print(f"{'':44} {'stopped':>8} {'step share':>11} {'regret':>9} {'best stopped':>13} {'wall s':>8}")
        for name, r in rows.items():
            refused = f"  (cap refused {r['cap_refused']})" if r["cap_refused"] else ""
            print(
                f"{name:44} {r['stopped']:>5}/{r['runs']:<2} {r['step_share']:>11.1%} {r['regret']:>9.4f} "
                f"{'yes' if r['best_stopped'] else 'no':>13} {r['wall']:>8.1f}{refused}"
            )
    flight = 2 if 2 in in_flight_counts else in_flight_counts[-1]
    n_jobs = 2 if 2 in jobs else jobs[-1]
    suffix = f", n_jobs={n_jobs}" if n_jobs > 1 else ""

    def pick(family: str, name: str, key: str) -> float | None:
        row = results[family].get(name)
        return None if row is None else round(float(row[key]), 4)

    summary = {
        family: {
            "ours_step_share": pick(family, f"ours median, {flight} in flight", "step_share"),
            "optuna_median_step_share": pick(family, f"optuna MedianPruner{suffix}", "step_share"),
            "optuna_sha_step_share": pick(family, f"optuna SuccessiveHalvingPruner{suffix}", "step_share"),
            "ours_regret": pick(family, f"ours median, {flight} in flight", "regret"),
            "optuna_regret": pick(family, f"optuna MedianPruner{suffix}", "regret"),
            "optuna_sha_regret": pick(family, f"optuna SuccessiveHalvingPruner{suffix}", "regret"),
            "ours_best_stopped": results[family][f"ours median, {flight} in flight"]["best_stopped"],
        }
        for family in families
    }
    print(json.dumps({"families": summary, "in_flight": flight, "optuna_n_jobs": n_jobs}))


if __name__ == "__main__":
    main()
