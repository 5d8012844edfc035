"""Performance regressions: the ratio figures at a small size, against a committed baseline.

Runs the other benchmarks at a small size, each in a process of its own, and reads the JSON line
each ends with: the whole path against raw Celery (``overhead.py``), against Optuna and the
10-ms utilization (``peers.py``), the refit time (``optimizer.py``, 500 results x 10,000
pending) and the first publish of a million-point grid with an adaptive refit on 100,000 points
(``scale.py``). Each figure is compared with ``benchmarks/baseline.json`` and flagged when it is
worse than the baseline by more than its noise: the spread (max - min) of the runs recorded with
the baseline, and never less than ``MIN_NOISE`` of its value.

It never fails on a figure (a shared machine's figures wander; a flag is a reason to look, and
is listed in the README's benchmark section until explained). It fails only when a benchmark
does. A part whose benchmark needs a package that is not installed is skipped and says so.

Run: ``.venv/bin/python benchmarks/regressions.py`` (compare), ``--record 5`` (write the
baseline from 5 runs of each part), ``--smoke`` (each part at its smallest size: a check that the
comparison runs, whose figures mean nothing).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import ROOT, parse_args

BASELINE = ROOT / "benchmarks" / "baseline.json"
MIN_NOISE = 0.02  # a figure within 2 % of its baseline is never flagged, whatever the spread was


@dataclass(frozen=True)
class Part:
    """One benchmark run and the figures read from its JSON line: name -> (key path, higher is better)."""

    script: str
    args: tuple[str, ...]
    figures: dict[str, tuple[tuple[str, ...], bool]]
    needs: str | None = None  # a module the benchmark cannot run without


PARTS = (
    Part("overhead.py", ("--n", "1000"), {"ratio_vs_celery": (("ratio",), True)}),
    Part(
        "peers.py",
        ("--n", "2000", "--n-short", "200"),
        {
            "ratio_vs_optuna": (("ratio_vs_optuna",), True),
            "utilization_10ms": (("utilization_10ms",), True),
        },
        needs="optuna",
    ),
    Part(
        "optimizer.py",
        ("--methods", "ours", "--problems", "branin", "--seeds", "1", "--budget", "14"),
        {"refit_s": (("refit_s", "500x10000"), False)},
    ),
    Part(
        "scale.py",
        ("--points", "1e6", "--results", "1000", "--adaptive-points", "1e5"),
        {"first_publish_s": (("first_publish_s",), False), "adaptive_refit_s": (("refit_s",), False)},
    ),
)


def run_part(part: Part, smoke: bool) -> dict[str, float]:
    """Run one benchmark; its figures (fails if the benchmark fails)."""
    args = ["--smoke"] if smoke else list(part.args)
    if part.script == "optimizer.py":
        args = (
            list(part.args[:2])
            + args
            + (["--refit-sizes", "50x1000"] if smoke else ["--refit-sizes", "500x10000"])
        )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / part.script), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"{part.script} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        )
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    out = {}
    for name, (path, _) in part.figures.items():
        value: Any = data
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None and part.script == "optimizer.py" and smoke:
            value = next(iter(data.get("refit_s", {}).values()), None)
        if isinstance(value, (int, float)):
            out[name] = float(value)
    return out


def measure(rounds: int, smoke: bool) -> tuple[dict[str, list[float]], list[str]]:
    """Every figure's values over ``rounds`` runs; and the parts skipped, with why."""
    values: dict[str, list[float]] = {}
    skipped = []
    for part in PARTS:
        if part.needs and importlib.util.find_spec(part.needs) is None:
            skipped.append(f"{part.script}: skipped ({part.needs} is not installed)")
            continue
        for _ in range(rounds):
            for name, value in run_part(part, smoke).items():
                values.setdefault(name, []).append(value)
    return values, skipped


def higher_is_better(name: str) -> bool:
    return next(part.figures[name][1] for part in PARTS if name in part.figures)


def compare(now: dict[str, list[float]], baseline: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Table rows: figure, baseline +- noise, now, change, flag."""
    rows = []
    for name, values in now.items():
        value = statistics.median(values)
        base = baseline.get("figures", {}).get(name)
        if base is None:
            rows.append((name, "-", f"{value:.3f}", "-", "no baseline"))
            continue
        ref, noise = float(base["value"]), max(float(base["noise"]), MIN_NOISE * abs(float(base["value"])))
        worse = (ref - value) if higher_is_better(name) else (value - ref)
        change = (value - ref) / ref if ref else 0.0
        flag = "WORSE beyond noise" if worse > noise else ""
        rows.append((name, f"{ref:.3f} +- {noise:.3f}", f"{value:.3f}", f"{change:+.1%}", flag))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--record", type=int, default=0, metavar="N", help="write the baseline from N runs each"
    )
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    args = parse_args(parser, smoke={})
    started = time.perf_counter()
    values, skipped = measure(max(args.record, 1), args.smoke)
    if args.record and not args.smoke:
        record = {
            "measured": time.strftime("%Y-%m-%d"),
            "host": f"{platform.node()}: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
            "runs": args.record,
            "figures": {
                name: {"value": round(statistics.median(v), 4), "noise": round(max(v) - min(v), 4), "runs": v}
                for name, v in values.items()
            },
        }
        args.baseline.write_text(json.dumps(record, indent=2) + "\n")
        print(f"baseline written to {args.baseline} ({args.record} runs each)")
    baseline = json.loads(args.baseline.read_text()) if args.baseline.exists() else {}
    print(
        f"performance figures against {args.baseline.name} (measured {baseline.get('measured', 'never')}, "
        f"{baseline.get('host', '')}){'; smoke: the figures mean nothing' if args.smoke else ''}"
    )
    print(f"{'figure':<20}{'baseline':>20}{'now':>12}{'change':>10}  flag")
    rows = compare(values, baseline)
    for name, base, now, change, flag in rows:
        print(f"{name:<20}{base:>20}{now:>12}{change:>10}  {flag}")
    for note in skipped:
        print(note)
    flagged = [r[0] for r in rows if r[4].startswith("WORSE")]
    print(
        f"{len(flagged)} flagged ({time.perf_counter() - started:.0f} s); never a failure: see the README's benchmarks"
    )
    print(json.dumps({"flagged": flagged, **{n: statistics.median(v) for n, v in values.items()}}))


if __name__ == "__main__":
    main()
