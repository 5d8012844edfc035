"""Benchmark of ``orchestrator report`` on a large synthetic sweep, against a plain pandas groupby.

Usage: ``python benchmarks/report.py [--rows 100000] [--keep DIR] [--smoke]``

Builds a sweep of 10 sampled parameters x 3 metrics x 10 repeats (10,000 points, 100,000 rows)
as the result store writes it (Parquet under ``sweep=<id>/project=<name>/`` plus ``sweep.json``),
then times, each in a fresh process as a user runs it: ``orchestrator report --format json`` and
``--format html`` (wall time and peak RSS), and the floor: reading the Parquet and a pandas
groupby computing the same n / mean / std per point and metric. Targets: under 10 s and 1 GB.

The last line printed is one JSON object: ``{"rows": n, "json_s": t, "json_rss_mb": m,
"html_s": t, "html_rss_mb": m, "groupby_s": t, "groupby_rss_mb": m}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from harness import parse_args

SWEEP = "bench-0000000000"
FLOOR = """
import sys, pandas as pd
frame = pd.read_parquet(sys.argv[1])
keys = [c for c in frame.columns if c.startswith("param.")]
metrics = [c for c in frame.columns if c.startswith("metric.")]
long = frame[frame["status"] == "completed"].melt(id_vars=keys, value_vars=metrics)
out = long.groupby([*keys, "variable"])["value"].agg(["count", "mean", "std"])
print(len(out))
"""


def build(root: Path, rows: int, repeats: int = 10, n_params: int = 10) -> None:
    rng = np.random.default_rng(0)
    points = rows // repeats
    x = rng.random((points, n_params))
    names = [f"p{i}" for i in range(n_params)]
    signal = 3 * x[:, 0] + np.sin(6 * x[:, 1]) + x[:, 2] * x[:, 3]
    frame = pd.DataFrame(np.repeat(x, repeats, axis=0), columns=[f"param.{n}" for n in names])
    base = np.repeat(signal, repeats)
    frame["metric.energy"] = base + rng.normal(0, 0.1, rows)
    frame["metric.fidelity"] = np.clip(1 - 0.1 * base + rng.normal(0, 0.01, rows), 0, 1)
    frame["metric.depth"] = np.repeat(rng.integers(1, 50, points), repeats).astype(float)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    frame = frame.assign(
        sweep_id=SWEEP,
        experiment_id=[f"{i:016x}" for i in range(rows)],
        project_name="synthetic",
        index=np.repeat(np.arange(points), repeats),
        repeat=np.tile(np.arange(repeats), points),
        status="completed",
        error_class=None,
        error_message=None,
        execution_time=0.05,
        cost=0.0,
        attempt=1,
        worker_host="bench",
        resource="local_cpu",
        device=None,
        added=False,
        reproducibility_hash=[f"h{i}" for i in range(rows)],
        timestamp=start + pd.to_timedelta(np.arange(rows) * 0.01, unit="s"),
        parameters="{}",
        metrics="{}",
        log="",
    )
    folder = root / f"sweep={SWEEP}" / "project=synthetic"
    folder.mkdir(parents=True)
    frame.to_parquet(folder / "part-0.parquet", index=False)
    config = {
        "name": "bench",
        "parameters": {n: {"sample": "uniform", "low": 0, "high": 1, "n": points} for n in names},
        "objectives": [{"metric": "energy", "goal": "minimize"}, {"metric": "fidelity", "goal": "maximize"}],
        "projects": [{"name": "synthetic", "standardize": {}}],
        "adaptive_sampling": False,
        "repeats": repeats,
    }
    (root / f"sweep={SWEEP}" / "sweep.json").write_text(json.dumps({"sweep": config, "sweep_id": SWEEP}))


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    wrapper = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, r.returncode)"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, check=True)
    seconds, rss, code = out.stdout.split()
    if code != "0":
        raise SystemExit(f"{cmd} failed with exit code {code}")
    return float(seconds), float(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, default=None, help="build the dataset here and keep it")
    args = parse_args(parser, smoke={"rows": 2_000})
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        measure(args.rows, args.keep or Path(tmp))


def measure(rows: int, root: Path) -> None:
    """Build the dataset under ``root``, time the report and the floor, print the figures."""
    t = time.perf_counter()
    build(root, rows)
    print(f"built {rows:,} rows in {time.perf_counter() - t:.1f} s under {root}")
    report = [sys.executable, "-m", "orchestrator.cli", "report", SWEEP, "--results-dir", str(root)]
    result = {"rows": rows}
    for fmt in ("json", "html"):
        seconds, rss = timed([*report, "--format", fmt, "-o", str(root / f"report.{fmt}")])
        result[f"{fmt}_s"], result[f"{fmt}_rss_mb"] = round(seconds, 2), round(rss)
        size = (root / f"report.{fmt}").stat().st_size / 1e6
        print(f"report --format {fmt}: {seconds:6.2f} s, peak RSS {rss:5.0f} MB, {size:.1f} MB written")
    parquet = root / f"sweep={SWEEP}" / "project=synthetic" / "part-0.parquet"
    seconds, rss = timed([sys.executable, "-c", FLOOR, str(parquet)])
    result["groupby_s"], result["groupby_rss_mb"] = round(seconds, 2), round(rss)
    print(f"pandas groupby (floor): {seconds:6.2f} s, peak RSS {rss:5.0f} MB")
    print(f"report / floor: json {result['json_s'] / seconds:.1f}x, html {result['html_s'] / seconds:.1f}x")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
