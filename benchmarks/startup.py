"""Start-up and shut-down: ``orchestrator run`` of the quickstart against Optuna's in-process loop.

The quickstart is 24 points (12 noise levels x 2 shot counts) of a Bell-pair fidelity study on
Braket's local density-matrix simulator, a few milliseconds each: what a researcher iterating
on a sweep file feels is start-up and shut-down, not the runs. Three figures, each the wall
time of a fresh command (``subprocess``) as a user types it, median of ``--repeats``:

* ``first_result_s``: from the command to the first result on disk (a Parquet file under the
  results folder), on a fresh results and state folder;
* ``whole_s``: the same command until it exits (24 runs, summary printed, Redis and workers
  stopped);
* ``reuse_s``: the same sweep file again: every result is reused, nothing runs.

Optuna, side by side: a fresh ``python`` that imports Optuna and the same ``bell.run`` and
calls ``study.optimize`` over the same 24 points (``GridSampler``, in-memory storage): to its
first finished trial and to its exit. Optuna keeps nothing between commands, so its rerun is
its whole run again.

Targets (issue 12): first result < 3 s, reuse-only rerun < 2 s, whole quickstart < 5 s. The
machine's load changes every absolute figure: the ratios to Optuna, measured in the same
minutes, say more. The last line is JSON.

Run: ``.venv/bin/python benchmarks/startup.py [--repeats 3] [--smoke]`` (needs Optuna: the ``test``
and ``bench`` extras have it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, parse_args

QUICKSTART = ROOT / "examples" / "sweeps" / "quickstart.yaml"
POLL = 0.01

OPTUNA = """
import sys, time
import numpy as np
import optuna
sys.path.insert(0, {bell!r})
from bell import run

optuna.logging.set_verbosity(optuna.logging.WARNING)
space = {{"noise": [float(x) for x in np.linspace(0.0, 0.2, 12)], "shots": [500, 2000]}}
study = optuna.create_study(sampler=optuna.samplers.GridSampler(space), direction="maximize")
first = []

def objective(trial):
    out = run(trial.suggest_float("noise", 0.0, 0.2), trial.suggest_categorical("shots", [500, 2000]))
    return out["p_correlated"]

def note(study, trial):
    if not first:
        first.append(time.time())
        print("FIRST", first[0], flush=True)

study.optimize(objective, n_trials=24, callbacks=[note])
assert len(study.trials) == 24
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_ours(workdir: Path) -> tuple[float | None, float]:
    """(seconds to the first Parquet file, seconds to exit) of ``orchestrator run quickstart``."""
    results = workdir / "results"
    cmd = [sys.executable, "-m", "orchestrator.cli", "run", str(QUICKSTART)]
    cmd += ["--results-dir", str(results), "--state-dir", str(workdir / "state")]
    had = set(results.rglob("*.parquet")) if results.exists() else set()
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=workdir, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = None
    while proc.poll() is None:
        if first is None and results.exists() and set(results.rglob("*.parquet")) - had:
            first = time.monotonic() - start
        time.sleep(POLL)
    whole = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"orchestrator run failed ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}"
        )
    return first, whole


def run_optuna() -> tuple[float, float]:
    """(seconds to the first finished trial, seconds to exit) of a fresh Optuna process."""
    script = OPTUNA.format(bell=str(ROOT / "examples" / "projects" / "bell"))
    start_wall, start = time.time(), time.monotonic()
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env())
    whole = time.monotonic() - start
    if out.returncode != 0:
        raise SystemExit(f"optuna failed: {out.stderr[-2000:]}")
    first = float(next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("FIRST")))
    return first - start_wall, whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parse_args(parser, smoke={"repeats": 1})

    figures: dict[str, list[float]] = {k: [] for k in ("first", "whole", "reuse", "o_first", "o_whole")}
    for i in range(args.repeats):
        workdir = Path(tempfile.mkdtemp(prefix="startup-bench-"))
        try:
            first, whole = run_ours(workdir)
            _, reuse = run_ours(workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        o_first, o_whole = run_optuna()
        if first is None:
            raise SystemExit("the run wrote no Parquet file")
        for key, value in zip(figures, (first, whole, reuse, o_first, o_whole), strict=True):
            figures[key].append(value)
        print(
            f"round {i + 1}: ours first {first:.2f} s, whole {whole:.2f} s, reuse-only {reuse:.2f} s; "
            f"optuna first {o_first:.2f} s, whole {o_whole:.2f} s",
            flush=True,
        )

    med = {k: statistics.median(v) for k, v in figures.items()}
    print()
    print(f"{'':28}{'ours':>10}{'optuna':>10}{'ratio':>8}{'target':>10}")
    for label, ours, theirs, target in (
        ("command to first result", med["first"], med["o_first"], 3.0),
        ("whole quickstart", med["whole"], med["o_whole"], 5.0),
        ("rerun (ours: reuse-only)", med["reuse"], med["o_whole"], 2.0),
    ):
        mark = "ok" if ours < target else "MISSED"
        print(f"{label:28}{ours:>9.2f}s{theirs:>9.2f}s{ours / theirs:>8.2f}{f'< {target:g} s':>8} {mark}")
    print(f"(median of {args.repeats}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(
        json.dumps(
            {
                "first_result_s": round(med["first"], 3),
                "reuse_rerun_s": round(med["reuse"], 3),
                "whole_s": round(med["whole"], 3),
                "optuna_first_result_s": round(med["o_first"], 3),
                "optuna_whole_s": round(med["o_whole"], 3),
                "targets_met": med["first"] < 3 and med["reuse"] < 2 and med["whole"] < 5,
            }
        )
    )


if __name__ == "__main__":
    main()
