"""Benchmark of the adaptive optimizer: regret on Branin and Hartmann6, and refit time.

Usage: ``python benchmarks/optimizer.py [--seeds 10] [--jobs 2] [--smoke]``

* The sweep space is each function's box as a scrambled Sobol set of candidate points (a
  ``sample: sobol`` sweep parameter group), plus the refinement points the optimizer adds.
* Ours runs with 4 experiments in flight: a loop keeps 4 suggestions outstanding, each takes a
  random duration, and every completion triggers a refit (``analyze_results``) and the start of
  the best-scored pending or refinement point.
* Random order runs the same Sobol set in a random order. Optuna's ``GPSampler`` and
  ``TPESampler`` run sequentially over the continuous box with the same budgets.
* Simple regret (best value so far minus the true minimum) after 20, 40 and 60 experiments,
  median over the seeds; refit time for 500 results x 10,000 pending points and 5,000 x 100,000.

The last line printed is one JSON object: ``{"regret": {method: {"branin@20": r, "branin@40": r,
"hartmann6@20": r, "hartmann6@60": r}}, "refit_s": {"500x10000": t, "5000x100000": t}}`` for the
methods ours, random, gp and tpe (refit times: the best of 3 cold runs). Optuna's ``GPSampler``
needs PyTorch (the ``bench`` extra): without it the ``gp`` column is skipped, and said so.
"""

from __future__ import annotations

import argparse
import heapq
import importlib.util
import json
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from harness import parse_args
from threadpoolctl import threadpool_limits

from core.config import SweepConfiguration  # noqa: E402
from orchestrator.optimizer import GPOptimizer, OptimizationRecommendation  # noqa: E402

BUDGETS = (20, 40, 60)
WORKERS = 4

_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def branin(x: np.ndarray) -> float:
    x1, x2 = float(x[0]), float(x[1])
    return (
        (x2 - 5.1 / (4 * np.pi**2) * x1**2 + 5 / np.pi * x1 - 6) ** 2
        + 10 * (1 - 1 / (8 * np.pi)) * np.cos(x1)
        + 10
    )


def hartmann6(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    return float(-np.sum(_ALPHA * np.exp(-np.sum(_A * (x - _P) ** 2, axis=1))))


PROBLEMS: dict[str, tuple[Callable[[np.ndarray], float], list[tuple[float, float]], float, int]] = {
    # name: (function, box, true minimum, largest budget)
    "branin": (branin, [(-5.0, 10.0), (0.0, 15.0)], 0.397887, 40),
    "hartmann6": (hartmann6, [(0.0, 1.0)] * 6, -3.32237, 60),
}


def checkpoints(problem: str, cap: int | None = None) -> tuple[int, ...]:
    """Where regret is read for ``problem``: 20, 40, 60 up to its largest budget, or up to ``cap``
    (which is then the last); the first and the last go into the JSON."""
    largest = PROBLEMS[problem][3] if cap is None else min(cap, PROBLEMS[problem][3])
    return tuple(sorted({b for b in BUDGETS if b < largest} | {largest}))


def sweep(
    name: str, box: list[tuple[float, float]], n_candidates: int, seed: int, options: dict[str, Any]
) -> SweepConfiguration:
    params = {
        f"x{i}": {"sample": "sobol", "low": lo, "high": hi, "n": n_candidates}
        for i, (lo, hi) in enumerate(box)
    }
    return SweepConfiguration.model_validate(
        {
            "name": name,
            "projects": [{"name": name, "path": "."}],
            "parameters": params,
            "objectives": [{"metric": "value", "goal": "minimize"}],
            "seed": seed,
            "optimizer": options,
        }
    )


# startup_points is left to its default, max(6, parameters): 6 for Branin and for Hartmann6
OURS = {
    "coverage_share": 0.1,
    "refinement": True,
    "refinement_points": 2,
    "output_warping": "yeo-johnson",
    "batch_size": WORKERS,
}


def run_ours(
    problem: str, seed: int, budget: int, n_candidates: int = 4096, workers: int = WORKERS
) -> list[float]:
    fn, box, _, _ = PROBLEMS[problem]
    config = sweep(problem, box, n_candidates, seed, OURS)
    opt = GPOptimizer(config)
    space = opt.space
    names = space.names
    rng = np.random.default_rng(seed + 1000)
    pending = set(range(space.size))
    added: dict[int, dict[str, Any]] = {}
    running: list[tuple[float, int]] = []  # (finish time, index) heap
    results: list[dict[str, Any]] = []
    values: list[float] = []
    clock = 0.0
    last: list[OptimizationRecommendation] = []  # the previous refit's kernel fit warm-starts the next

    def params_of(index: int) -> dict[str, Any]:
        return added[index] if index in added else space.point(index)

    def start_best() -> None:
        flight = np.asarray([i for _, i in running], dtype=np.int64)
        previous = last[-1] if last else None
        rec = opt.analyze_results(
            results, np.fromiter(pending, dtype=np.int64), flight, added=added, previous=previous
        )
        last[:] = [rec]
        best_index, best_score = max(rec.priority_adjustments.items(), key=lambda kv: (kv[1], -kv[0]))
        for point, score in zip(rec.refinement_points, rec.refinement_scores, strict=True):
            if score > best_score:
                best_index, best_score = space.size + len(added), score
                added[best_index] = point
        pending.discard(best_index)
        heapq.heappush(running, (clock + rng.uniform(0.5, 1.5), best_index))

    while len(running) < workers:
        start_best()
    while len(values) < budget:
        clock, index = heapq.heappop(running)
        params = params_of(index)
        value = fn(np.asarray([params[n] for n in names], dtype=float))
        values.append(value)
        results.append(
            {
                "experiment_id": f"e{index}",
                "index": index,
                "status": "completed",
                "parameters": params,
                "metrics": {"value": value},
            }
        )
        if len(values) + len(running) < budget:
            start_best()
    return values


def run_random(problem: str, seed: int, budget: int, n_candidates: int = 4096) -> list[float]:
    fn, box, _, _ = PROBLEMS[problem]
    space = sweep(problem, box, n_candidates, seed, {}).space()
    order = np.random.default_rng(seed).permutation(space.size)[:budget]
    cols = space.columns(order)
    X = np.stack([cols[f"x{i}"] for i in range(len(box))], axis=1).astype(float)
    return [fn(x) for x in X]


def run_optuna(problem: str, seed: int, budget: int, sampler_name: str) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fn, box, _, _ = PROBLEMS[problem]
    sampler = (
        optuna.samplers.GPSampler(seed=seed)
        if sampler_name == "gp"
        else optuna.samplers.TPESampler(seed=seed)
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(
        lambda t: fn(np.asarray([t.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(box)])),
        n_trials=budget,
    )
    return [float(t.value) for t in study.trials if t.value is not None]


def _job(args: tuple[str, str, int, int]) -> tuple[str, str, int, list[float], float]:
    method, problem, seed, budget = args
    t0 = time.perf_counter()
    # two jobs share the two cores: BLAS threads would only fight over them
    with threadpool_limits(1):
        if method == "ours":
            values = run_ours(problem, seed, budget)
        elif method == "random":
            values = run_random(problem, seed, budget)
        else:
            values = run_optuna(problem, seed, budget, method)
    return method, problem, seed, values, time.perf_counter() - t0


def refit_time(n_results: int, n_pending: int, repeats: int = 3) -> list[float]:
    """Seconds of ``repeats`` cold refits + re-scores of ``n_pending`` points after ``n_results``.

    Cold: a fresh optimizer each time, so no warm start of the kernel hyperparameters (the beat
    task's refits are warm and faster). The space is 6-D (Hartmann6) with 4 experiments in flight.
    """
    size = 1 << int(np.ceil(np.log2(n_results + n_pending + WORKERS)))
    config = sweep("timing", PROBLEMS["hartmann6"][1], size, 7, OURS)
    space = config.space()
    order = np.random.default_rng(0).permutation(space.size)
    done, pending = order[:n_results], order[n_results : n_results + n_pending]
    in_flight = order[n_results + n_pending : n_results + n_pending + WORKERS]
    cols = space.columns(done)
    X = np.stack([cols[f"x{i}"] for i in range(6)], axis=1).astype(float)
    results = [
        {
            "experiment_id": f"e{i}",
            "index": int(i),
            "status": "completed",
            "parameters": {f"x{j}": float(x[j]) for j in range(6)},
            "metrics": {"value": hartmann6(x)},
        }
        for i, x in zip(done, X, strict=True)
    ]
    times = []
    for _ in range(repeats):
        opt = GPOptimizer(config, space)
        t0 = time.perf_counter()
        opt.analyze_results(results, pending, in_flight)
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seeds", type=int, default=10, help="seeds per method and problem (median reported)"
    )
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds run are first-seed .. first-seed+seeds-1"
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for the regret runs")
    parser.add_argument("--methods", default="ours,random,gp,tpe")
    parser.add_argument("--problems", default="branin,hartmann6")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help="cap on every problem's budget (smoke: 14, past the GPSampler's 10 startup trials)",
    )
    parser.add_argument(
        "--refit-sizes",
        default="500x10000,5000x100000",
        help="results x pending points of the refit timings, comma-separated",
    )
    args = parse_args(parser, smoke={"seeds": 1, "budget": 14, "refit_sizes": "50x1000"}, argv=argv)
    methods = args.methods.split(",")
    if "gp" in methods and importlib.util.find_spec("torch") is None:
        methods.remove("gp")
        print(
            "gp (Optuna's GPSampler): skipped, because torch is not installed "
            "(the bench extra has it: pip install -e '.[bench]')"
        )
    problems = args.problems.split(",")
    budgets = {p: checkpoints(p, args.budget) for p in problems}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(m, p, s, budgets[p][-1]) for p in problems for m in methods for s in seeds]
    curves: dict[tuple[str, str], list[list[float]]] = {}
    seconds: dict[tuple[str, str], float] = {}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for method, problem, _seed, values, took in pool.map(_job, jobs):
            curves.setdefault((method, problem), []).append(values)
            seconds[(method, problem)] = seconds.get((method, problem), 0.0) + took
    regret: dict[str, dict[str, float]] = {m: {} for m in methods}
    print(
        f"simple regret, median over {args.seeds} seeds ({seeds.start}-{seeds.stop - 1}; {WORKERS} in flight for ours; "
        f"regret runs took {time.perf_counter() - t0:.0f} s)"
    )
    header = f"{'method':<8}" + "".join(f"{p + '@' + str(b):>14}" for p in problems for b in budgets[p])
    print(header + f"{'s/run':>8}")
    for m in methods:
        line = f"{m:<8}"
        for p in problems:
            truth = PROBLEMS[p][2]
            runs = curves[(m, p)]
            for b in budgets[p]:
                r = float(np.median([min(v[:b]) - truth for v in runs]))
                line += f"{r:>14.5f}"
                if b in (budgets[p][0], budgets[p][-1]):
                    regret[m][f"{p}@{b}"] = round(r, 6)
        per_run = sum(seconds[(m, p)] for p in problems) / (len(problems) * args.seeds)
        print(line + f"{per_run:>8.2f}")
    timing: dict[str, float] = {}
    if not args.no_timing:
        print("refit + re-score, cold (s): best / median of 3")
        for size in args.refit_sizes.split(","):
            n, m = map(int, size.split("x"))
            times = refit_time(n, m)
            timing[size] = round(min(times), 3)
            print(f"  {n} results x {m} pending: {min(times):.3f} / {float(np.median(times)):.3f}")
    print(json.dumps({"regret": regret, "refit_s": timing}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
