"""A fidelity ladder against QPU-only search: dollars to a good QAOA angle, and the value at a budget.

The problem: p = 1 QAOA MaxCut (angles gamma in [0, pi], beta in [0, pi/2]) on a 3-regular graph,
the Wagner graph (8 nodes, 12 edges; the triangular prism, 6 nodes, at ``--smoke``), project
``benchmarks/projects/qaoa_cubic``. The QPU is the fake Braket service's IonQ Forte
(``tests/support/fake_braket.py``: the real SDK over HTTP, results in moto's S3), whose tasks are
density-matrix simulations with the depolarizing and readout noise of its published calibration;
it is priced as Forte in ``orchestrator/braket/prices.yaml`` ($0.30 a task + $0.08 a shot). Every
arm gets the same budget (``--budget``) and ``--shots`` per QPU task:

* ``ladder``: ours, ``fidelities: [{device: local:dm, noise: device}, {device: <Forte>}]`` with
  ``promote: {by: model}``: each of ``--ladder-points`` (256) Sobol candidate angles runs free on
  the local density-matrix simulator with the Forte's published noise (at ``--sim-shots``), and
  the optimizer promotes the promising ones to the QPU (no ``max_experiments``: the promotion
  rule counts the candidates not yet run as later uses of the budget, so a capped ladder ended
  before it promoted anything);
* ``qpu_only``: ours, the Gaussian-process optimizer choosing QPU runs (``optimizer`` as in
  ``examples/sweeps/qaoa_adaptive.yaml``) among the same Sobol candidate angles (``--candidates``);
* ``random``: ours with ``optimizer.sampler: random``: the candidates in a seeded random order;
* ``optuna_qpu``: Optuna's ``GPSampler`` through ask/tell over the continuous box, each trial one
  task on the same fake QPU through the SDK, charged the price table's cost (needs torch: the
  ``bench`` extra; without it the arm is skipped and said so).

Ours keeps at most ``--in-flight`` (2) tasks open on the QPU (``ORCHESTRATOR_BRAKET_LIMITS``), so
that later choices see earlier results, as a user keeps a paid queue short; Optuna runs one at a
time. Each arm's experiments are its own (an ``arm`` parameter the project ignores): no result
is reused across arms.

The best value attainable on the QPU is exact, without shot noise: ``landscape.py`` beside the
project simulates the circuit as a density matrix with exactly the fake QPU's channels. It is
computed once (``--compute-best``: a 41 x 41 grid, then Nelder-Mead from the best three) into
``best.json`` there; every run checks the landscape against Braket's density-matrix simulator
running the fake QPU's noisy program at two angles, and recomputes the best if the QPU's
calibration is not the one stored.

``usd``: the dollars an arm had spent on the QPU when it first ran a point whose exact value is
within 1 % of the best (None: never, within the budget). ``final``: the exact value of the arm's
recommendation when the budget is spent, the point of its best *measured* QPU value (what a user
would report). The last line is JSON: ``{"ladder_usd", "qpu_only_usd", "optuna_qpu_usd",
"random_usd", "ladder_final", "qpu_only_final"}`` (medians over ``--seeds``). Target, printed and
never asserted: ``ladder_usd <= qpu_only_usd / 3``, and ``ladder_final`` within the noise of one
QPU measurement (half its 95 % interval at the best point) of ``qpu_only_final``.

Run: ``.venv/bin/python benchmarks/multifidelity.py [--seeds 3] [--budget 800] [--smoke]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from harness import ROOT, parse_args

PROJECT = ROOT / "benchmarks" / "projects" / "qaoa_cubic"
sys.path.insert(0, str(PROJECT))
from landscape import Landscape  # noqa: E402
from qaoa_cubic import analyze, build  # noqa: E402

from tests.support.fake_devices import IONQ, default_devices  # noqa: E402

GAMMA, BETA = (0.0, float(np.pi)), (0.0, float(np.pi / 2))
BEST = PROJECT / "best.json"
WITHIN = 0.01
TIMEOUT = 900  # seconds one arm may take


@dataclass
class Arm:
    """One arm's QPU results in the order they completed: (gamma, beta, measured, usd)."""

    name: str
    runs: list[tuple[float, float, float, float]] = field(default_factory=list)
    other: int = 0  # runs elsewhere (the ladder's free rung)
    seconds: float = 0.0
    pending: str | None = None  # why the arm did not run

    def trajectory(self, land: Landscape) -> list[tuple[float, float, float, float]]:
        """Per QPU result: (dollars so far, the best exact value run so far, the recommendation's
        exact value, its measured value)."""
        out, best, found, spent = [], (-1.0, 0.0), 0.0, 0.0
        exact = land.ratio(np.array([r[0] for r in self.runs]), np.array([r[1] for r in self.runs]))
        for (_, _, measured, usd), value in zip(self.runs, exact, strict=True):
            spent, found = spent + usd, max(found, float(value))
            if measured > best[0]:
                best = (measured, float(value))
            out.append((spent, found, best[1], best[0]))
        return out


def best_on_qpu(land: Landscape, graph: str, calibration: Any, store: bool) -> tuple[float, float, float]:
    """(value, gamma, beta): the stored exact maximum, or computed when the graph or the QPU's
    calibration is not the one stored (written to ``best.json`` only when ``store``)."""
    stored = json.loads(BEST.read_text()) if BEST.exists() else {}
    fidelities = [calibration.one_qubit, calibration.two_qubit, calibration.readout]
    entry = stored.get(graph)
    if not store and entry and entry["calibration"] == fidelities:
        return entry["value"], entry["gamma"], entry["beta"]
    print(f"computing the best value on {graph} (stored: {'no' if entry is None else 'another calibration'})")
    value, gamma, beta = maximize(land)
    if store:
        stored[graph] = {"calibration": fidelities, "value": value, "gamma": gamma, "beta": beta}
        BEST.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    return value, gamma, beta


def maximize(land: Landscape) -> tuple[float, float, float]:
    """(value, gamma, beta): the exact maximum over the box, a 41 x 41 grid then Nelder-Mead."""
    from scipy.optimize import minimize

    grid_g, grid_b = np.meshgrid(np.linspace(*GAMMA, 41), np.linspace(*BETA, 41))
    values = land.ratio(grid_g, grid_b).ravel()
    found = []
    for start in np.argsort(values)[-3:]:
        res = minimize(
            lambda x: -float(land.ratio(np.array([x[0]]), np.array([x[1]]))[0]),
            [grid_g.ravel()[start], grid_b.ravel()[start]],
            method="Nelder-Mead",
            options={"xatol": 1e-4, "fatol": 1e-7},
        )
        found.append((-float(res.fun), float(res.x[0]), float(res.x[1])))
    return max(found)


def check_landscape(land: Landscape, graph: str, calibration: Any) -> float:
    """The largest gap between the landscape and Braket's density-matrix simulator running the
    fake QPU's noisy program (``fake_noise.noisy``) at two angles."""
    from braket.circuits.serialization import IRType
    from braket.default_simulator import DensityMatrixSimulator
    from braket.ir.openqasm import Program

    from tests.support.fake_noise import noisy

    gap = 0.0
    for gamma, beta in ((0.6, 0.3), (2.1, 1.2)):
        circuit = build({"graph": graph, "gamma": gamma, "beta": beta}).probability()
        source = noisy(circuit.to_ir(IRType.OPENQASM).source, calibration)
        probs = np.array(DensityMatrixSimulator().run(Program(source=source), shots=0).resultTypes[0].value)
        gap = max(
            gap, abs(float(probs @ land.cuts) - float(land.ratio(np.array([gamma]), np.array([beta]))[0]))
        )
    return gap


# -- ours: sweeps through the orchestrator --------------------------------------------------------


def sweep(arm: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    project: dict[str, Any] = {"name": "qaoa", "path": str(PROJECT)}
    shots, candidates = args.shots, args.candidates
    optimizer: dict[str, Any] = {"startup_points": args.startup}
    if arm == "ladder":
        project["fidelities"] = [
            {"device": "local:dm", "noise": "device"},
            {"device": IONQ, "shots": args.shots},
        ]
        project["promote"] = {"by": "model", "max_share": args.max_share}
        # every candidate runs on the free rung (the point's own shots): fewer of them
        shots, candidates = args.sim_shots, args.ladder_points
    else:
        project.update(device=IONQ, resource="braket_qpu")
    if arm == "random":
        optimizer = {"sampler": "random"}
    config = {
        "name": f"mf-{arm}-{seed}",
        "projects": [project],
        "parameters": {
            "gamma": {"sample": "sobol", "low": GAMMA[0], "high": GAMMA[1], "n": candidates},
            "beta": {"sample": "sobol", "low": BETA[0], "high": BETA[1], "n": candidates},
            "graph": [args.graph],
            "shots": [shots],
            # the project ignores it; it keeps each arm's experiments its own (a completed
            # experiment of the same parameters on the same device would be reused, not run)
            "arm": [f"{arm}-{seed}"],
        },
        "objectives": [{"metric": "approx_ratio", "goal": "maximize"}],
        "adaptive_sampling": True,
        "budget_limit": args.budget,
        "optimizer": optimizer,
        "seed": seed,
    }
    return config


def run_ours(orch: Any, arm: str, args: argparse.Namespace, seed: int) -> Arm:
    """Submit ``arm``'s sweep, wait until it is done or its budget is spent, and read its rows."""
    out = Arm(arm)
    started = time.monotonic()
    try:
        sweep_id = orch.submit(sweep(arm, args, seed)).execution_id
    except Exception as exc:  # noqa: BLE001 - a ladder the main branch cannot run yet is reported, not faked
        if arm != "ladder":
            raise
        out.pending = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        return out
    while True:
        status = orch.status(sweep_id)
        idle = status.state == "paused" and status.counts.get("running", 0) == 0
        if status.done or idle:
            break
        if time.monotonic() - started > TIMEOUT:
            raise SystemExit(f"{arm}: not done after {TIMEOUT} s ({status.state}, {status.counts})")
        time.sleep(0.2)
    orch.cancel(sweep_id)  # a sweep paused by its budget stays paused: end it
    while not orch.status(sweep_id).done:
        time.sleep(0.2)
    out.seconds = time.monotonic() - started
    frame = orch.results(sweep_id)
    done = frame[frame["status"] == "completed"].sort_values("timestamp")
    qpu = done[done["device"] == IONQ]
    out.other = len(done) - len(qpu)
    out.runs = [
        (float(r["param.gamma"]), float(r["param.beta"]), float(r["metric.approx_ratio"]), float(r["cost"]))
        for _, r in qpu.iterrows()
    ]
    failed = frame[frame["status"] == "failed"]
    if arm == "ladder" and not out.runs:
        errors = sorted(set(failed["error_message"].astype(str).str[:200])) if len(failed) else []
        out.pending = "no point was promoted to the QPU" + (f"; errors: {errors}" if errors else "")
    return out


# -- Optuna's GPSampler, ask/tell, on the same QPU -------------------------------------------------


def run_optuna(args: argparse.Namespace, seed: int, bucket: str) -> Arm:
    out = Arm("optuna_qpu")
    if importlib.util.find_spec("torch") is None:
        out.pending = "skipped: Optuna's GPSampler needs torch (pip install -e '.[bench]')"
        return out
    import optuna
    from braket.aws import AwsDevice

    from orchestrator.braket.prices import load_price_table

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    device, prices = AwsDevice(IONQ), load_price_table()
    usd = prices.task_cost(IONQ, args.shots, None)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.GPSampler(seed=seed))
    started, spent = time.monotonic(), 0.0
    while spent + usd <= args.budget + 1e-9:  # the same rule as the ledger: never past the budget
        trial = study.ask()
        params = {
            "gamma": trial.suggest_float("gamma", *GAMMA),
            "beta": trial.suggest_float("beta", *BETA),
            "graph": args.graph,
        }
        result = device.run(build(params), (bucket, "optuna"), shots=args.shots).result()
        value = analyze(result, params)["approx_ratio"]
        study.tell(trial, value)
        spent += usd
        out.runs.append((params["gamma"], params["beta"], value, usd))
    out.seconds = time.monotonic() - started
    return out


# -- the run ---------------------------------------------------------------------------------------


def to_one_percent(arm: Arm, land: Landscape, best: float) -> float | None:
    for spent, value, _, _ in arm.trajectory(land):
        if value >= (1 - WITHIN) * best:
            return spent
    return None


def median(values: list[float | None]) -> float | None:
    """Median with None (never reached) counted as worse than any number; None if that is the median."""
    ranked = sorted(values, key=lambda v: float("inf") if v is None else v)
    middle = ranked[(len(ranked) - 1) // 2 : len(ranked) // 2 + 1]
    return None if None in middle else statistics.mean(middle)  # type: ignore[arg-type]


def run_all(
    args: argparse.Namespace, land: Landscape
) -> tuple[dict[str, list[Arm]], tuple[float, float, float]]:
    """Start the services and the workers, find the best value while the workers start, run every
    arm of every seed."""
    from orchestrator import Orchestrator
    from tests.support.braket_env import BraketTestEnv

    arms: dict[str, list[Arm]] = {name: [] for name in ("ladder", "qpu_only", "random", "optuna_qpu")}
    with tempfile.TemporaryDirectory(prefix="bench-multifidelity-") as tmp, BraketTestEnv() as env:
        folder = Path(tmp)
        os.environ.update(
            {
                "ORCHESTRATOR_BRAKET_S3_BUCKET": env.bucket,
                "ORCHESTRATOR_POLL_INTERVAL": "0.2",
                "ORCHESTRATOR_OPTIMIZER_INTERVAL": str(args.refit_every),
                "ORCHESTRATOR_STATE_DIR": str(folder / "state"),
                "ORCHESTRATOR_RESULTS_DIR": str(folder / "results"),
                # a task that finds the QPU's open slots taken waits a moment, not minutes
                "ORCHESTRATOR_BRAKET_LIMITS": json.dumps({"concurrent_tasks": {IONQ: args.in_flight}}),
                "ORCHESTRATOR_RETRY_BACKOFF": "0.2",
                "ORCHESTRATOR_RETRY_BACKOFF_MAX": "1",
                "ORCHESTRATOR_MAX_RETRIES": "100000",
                "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
            }
        )
        with Orchestrator(None, workers=args.workers) as orch:
            best_at = find_best(args, land)
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                for name in ("ladder", "qpu_only", "random"):
                    arms[name].append(run_ours(orch, name, args, seed))
                    print(f"  seed {seed} {name}: {describe(arms[name][-1])}", flush=True)
                arms["optuna_qpu"].append(run_optuna(args, seed, env.bucket))
                print(f"  seed {seed} optuna_qpu: {describe(arms['optuna_qpu'][-1])}", flush=True)
    return arms, best_at


def describe(arm: Arm) -> str:
    if arm.pending:
        return f"not run ({arm.pending})"
    spent = sum(r[3] for r in arm.runs)
    return f"{len(arm.runs)} QPU tasks (${spent:.2f}), {arm.other} elsewhere, {arm.seconds:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", default="wagner8", help="prism6 or wagner8")
    parser.add_argument("--candidates", type=int, default=1024, help="Sobol candidate angles of ours")
    parser.add_argument("--in-flight", type=int, default=2, help="open QPU tasks at most (ours)")
    parser.add_argument(
        "--compute-best", action="store_true", help="compute the best value and store it in best.json"
    )
    parser.add_argument("--budget", type=float, default=800.0, help="USD per arm")
    parser.add_argument("--shots", type=int, default=200, help="shots of one QPU task")
    parser.add_argument("--sim-shots", type=int, default=1000, help="shots of one free simulator run")
    parser.add_argument(
        "--ladder-points",
        type=int,
        default=256,
        help="the ladder's Sobol candidates, each run on the free rung",
    )
    parser.add_argument("--max-share", type=float, default=0.2, help="the ladder's promote.max_share")
    parser.add_argument("--startup", type=int, default=8, help="optimizer.startup_points")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="embedded worker processes")
    parser.add_argument("--refit-every", type=float, default=1.0, help="seconds between refits")
    args = parse_args(
        parser,
        smoke={
            "graph": "prism6",
            "candidates": 16,
            "budget": 9.0,  # two QPU tasks of 50 shots
            "shots": 50,
            "ladder_points": 16,
            "startup": 2,
        },
    )
    calibration = default_devices()[IONQ].calibration
    assert calibration is not None
    land = Landscape(args.graph, calibration.one_qubit, calibration.two_qubit, calibration.readout)
    arms, best_at = run_all(args, land)
    report(arms, land, best_at, args)


def find_best(args: argparse.Namespace, land: Landscape) -> tuple[float, float, float]:
    calibration = default_devices()[IONQ].calibration
    started = time.monotonic()
    gap = check_landscape(land, args.graph, calibration)
    best_at = best, gamma, beta = best_on_qpu(land, args.graph, calibration, args.compute_best)
    print(
        f"{args.graph}: best on the QPU {best:.4f} at gamma {gamma:.4f}, beta {beta:.4f} (exact, no shots; "
        f"landscape vs Braket's density matrix: {gap:.1e}; {time.monotonic() - started:.0f} s); "
        f"${args.budget:g} per arm, {args.shots} shots per QPU task "
        f"(${0.30 + 0.08 * args.shots:.2f}), {args.seeds} seed(s)",
        flush=True,
    )
    return best_at


def report(
    arms: dict[str, list[Arm]], land: Landscape, best_at: tuple[float, float, float], args: argparse.Namespace
) -> None:
    best = best_at[0]
    # half a 95 % interval of one QPU measurement at the best point (its exact shot distribution)
    noise = 1.96 * land.shot_sd(*best_at[1:]) / np.sqrt(args.shots)
    print(
        f"\n{'arm':<12}{'$ to 1 %':>12}{'final':>9}{'measured':>10}{'best run':>10}{'QPU tasks':>11}"
        f"{'other':>7}{'s':>6}"
    )
    summary: dict[str, dict[str, float | None]] = {}
    for name, runs in arms.items():
        ran = [a for a in runs if not a.pending]
        usd = median([to_one_percent(a, land, best) for a in ran]) if ran else None
        finals = [a.trajectory(land)[-1] for a in ran if a.runs]
        final = statistics.median(f[2] for f in finals) if finals else None
        summary[name] = {"usd": usd, "final": final}
        if not ran:
            print(f"{name:<12}not run: {runs[0].pending if runs else 'no seed'}")
            continue
        print(
            f"{name:<12}{'never' if usd is None else f'${usd:.2f}':>12}"
            f"{'-' if final is None else f'{final:.4f}':>9}"
            f"{statistics.median(f[3] for f in finals) if finals else float('nan'):>10.4f}"
            f"{statistics.median(f[1] for f in finals) if finals else float('nan'):>10.4f}"
            f"{statistics.median(len(a.runs) for a in ran):>11g}{statistics.median(a.other for a in ran):>7g}"
            f"{statistics.median(a.seconds for a in ran):>6.0f}"
        )
    for name, runs in arms.items():  # the medians' spread
        ran = [a for a in runs if not a.pending and a.runs]
        if len(ran) > 1:
            usds = [to_one_percent(a, land, best) for a in ran]
            print(
                f"  {name} per seed: $ to 1 % "
                + ", ".join("never" if u is None else f"{u:.2f}" for u in usds)
                + "; final "
                + ", ".join(f"{a.trajectory(land)[-1][2]:.4f}" for a in ran)
            )
    ladder, qpu = summary["ladder"], summary["qpu_only"]
    if ladder["usd"] is not None and qpu["usd"] is not None:
        print(f"ladder / qpu_only dollars to 1 %: {ladder['usd'] / qpu['usd']:.3f}   target: <= 0.333")
    if ladder["final"] is not None and qpu["final"] is not None:
        print(
            f"ladder - qpu_only final value: {ladder['final'] - qpu['final']:+.4f}; the noise of one "
            f"measurement (95 %): {noise:.4f}   target: within it"
        )

    def rounded(value: float | None, digits: int) -> float | None:
        return None if value is None else round(value, digits)

    print(
        json.dumps(
            {
                "ladder_usd": rounded(ladder["usd"], 2),
                "qpu_only_usd": rounded(qpu["usd"], 2),
                "optuna_qpu_usd": rounded(summary["optuna_qpu"]["usd"], 2),
                "random_usd": rounded(summary["random"]["usd"], 2),
                "ladder_final": rounded(ladder["final"], 4),
                "qpu_only_final": rounded(qpu["final"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
