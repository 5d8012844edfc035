"""The dashboard's trial table on a large sweep: reading the rows, then a sorted, filtered page.

    .venv/bin/python benchmarks/trial_table.py [--rows 100000] [--smoke]

Writes a sweep of ``--rows`` results (two parameters, a metric, a log tail each) to a temporary
result store and times :func:`~orchestrator.web.trials.sweep_table` (the first read, then again
with the files unchanged) and one page sorted by the metric and filtered on a parameter.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import types

import numpy as np

from core.results import ResultStore
from orchestrator.web.trials import sweep_table, trials_page


def write(store: ResultStore, rows: int) -> None:
    rng = np.random.default_rng(0)
    for lo in range(0, rows, 10_000):
        batch = []
        for i in range(lo, min(lo + 10_000, rows)):
            x, y = float(rng.random()), float(rng.random())
            batch.append(
                {
                    "sweep_id": "big",
                    "experiment_id": f"e{i}",
                    "project_name": "p",
                    "index": i,
                    "repeat": 0,
                    "status": "completed" if i % 10 else "failed",
                    "attempt": 1,
                    "execution_time": 0.1,
                    "cost": 0.0,
                    "timestamp": "2026-12-07T00:00:00",
                    "parameters": json.dumps({"x": x, "y": y}),
                    "metrics": json.dumps({"v": x * y}),
                    "param.x": x,
                    "param.y": y,
                    "metric.v": x * y,
                    "log": "a log line of the run " * 20,
                }
            )
        store.write_rows("big", batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--smoke", action="store_true", help="a few rows, to check the script runs")
    args = parser.parse_args()
    rows = 2_000 if args.smoke else args.rows
    with tempfile.TemporaryDirectory() as root:
        store = ResultStore(root)
        write(store, rows)
        orch = types.SimpleNamespace(store=store)
        started = time.perf_counter()
        table = sweep_table(orch, "big")  # type: ignore[arg-type]
        first = time.perf_counter() - started
        started = time.perf_counter()
        sweep_table(orch, "big")  # type: ignore[arg-type]
        again = time.perf_counter() - started
        started = time.perf_counter()
        page = trials_page(
            table,
            sort="v",
            order="desc",
            filter_text="x > 0.5; status = completed",
            status=None,
            offset=100,
            limit=50,
        )
        paged = time.perf_counter() - started
    print(f"trial table, {rows:,} rows ({page['total']:,} match the filter)")
    print(f"  read the rows (first request)      {first * 1000:8.1f} ms")
    print(f"  read again, the files unchanged    {again * 1000:8.1f} ms")
    print(f"  filter, sort and slice one page    {paged * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
