"""The REST API under load: a sweep with 100,000 results in the store and its coordinator running.

* 50 clients poll ``GET /sweeps/{id}`` and page through ``GET /sweeps/{id}/results`` (100 rows
  at a random offset) for 30 s, each on its own connection;
* 100 SSE subscribers follow ``GET /sweeps/{id}/events`` while an event is noted every 0.2 s;
* side by side, the same reads through the Python API in this process (``Orchestrator.status``
  and ``Orchestrator.results``, which reads the whole dataset: the API pages it as a stream).

It prints p50/p99 latency, errors, the server's CPU and whether every subscriber received every
event. Targets: status p99 under 200 ms, 0 errors, every subscriber receives every event. The
clients are threads of ``--client-processes`` processes (the subscribers, threads of this one);
on a small machine they compete with the server for CPU: read the figures as an upper bound on
latency.

The last line is JSON. Run: ``.venv/bin/python benchmarks/api.py [--duration 30] [--clients 50]
[--subscribers 100] [--rows 100000] [--smoke]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import requests
from harness import ROOT, CpuMeter, parse_args, process_tree, spawn, stop, wait_until

sys.path.insert(0, str(ROOT))
from orchestrator.api import Orchestrator  # noqa: E402
from orchestrator.redis_server import RedisServer, free_port  # noqa: E402
from orchestrator.store import SweepState  # noqa: E402

TOKEN = "benchmark-token"


def write_rows(results: Path, sweep_id: str, rows: int, files: int = 10) -> None:
    """``rows`` synthetic result rows in ``files`` Parquet files, as the result writer leaves them."""
    folder = results / f"sweep={sweep_id}" / "project=noop"
    folder.mkdir(parents=True, exist_ok=True)
    per = rows // files
    for f in range(files):
        index = np.arange(f * per, (f + 1) * per)
        pq.write_table(
            pa.table(
                {
                    "sweep_id": [sweep_id] * per,
                    "experiment_id": [f"e{i:08d}" for i in index],
                    "project_name": ["noop"] * per,
                    "index": index,
                    "status": ["completed"] * per,
                    "attempt": np.ones(per, dtype=np.int64),
                    "parameters": [json.dumps({"x": int(i)}) for i in index],
                    "metrics": [json.dumps({"y": int(i)}) for i in index],
                    "param.x": index,
                    "metric.y": index,
                }
            ),
            folder / f"part-{f:04d}.parquet",
        )


def percentiles(samples: list[float]) -> str:
    if not samples:
        return "n/a"
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"p50 {1000 * statistics.median(ordered):7.1f} ms   p99 {1000 * p99:7.1f} ms   n={len(ordered)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument(
        "--client-processes", type=int, default=5, help="processes the clients' threads are spread over"
    )
    parser.add_argument("--rows", type=int, default=100_000, help="result rows in the store")
    args = parse_args(
        parser,
        smoke={"duration": 3.0, "clients": 4, "subscribers": 4, "client_processes": 2, "rows": 2_000},
    )
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        measure(args, Path(tmp))


def measure(args: argparse.Namespace, workdir: Path) -> None:
    """Serve a sweep of ``args.rows`` results from ``workdir``, load it, print the figures."""
    redis_server = RedisServer().start()
    results = workdir / "results"
    folders = ["--results-dir", str(results), "--state-dir", str(workdir / "state")]
    sweep = {
        "name": "bench_api",
        "projects": [
            {"name": "noop", "path": str(ROOT / "benchmarks" / "projects" / "noop"), "entry": "noop:run"}
        ],
        "parameters": {"x": {"kind": "int", "start": 0, "stop": args.rows - 1}},
        "adaptive_sampling": False,
    }
    orch = Orchestrator(redis_server.url, coordinate=False, results_dir=results, state_dir=workdir / "state")
    sweep_id = orch.submit(sweep).execution_id
    write_rows(results, sweep_id, args.rows)
    port = free_port()
    os.environ.update(
        ORCHESTRATOR_API_TOKEN=TOKEN, ORCHESTRATOR_PROJECT_ROOTS=str(ROOT / "benchmarks" / "projects")
    )
    # the coordinator in its own process, as a deployment runs it (docker-compose.yml)
    coordinator = spawn(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "coordinator",
            "--broker",
            redis_server.url,
            *folders,
        ],
        workdir,
        "coordinator.log",
    )
    server = spawn(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "serve",
            "--broker",
            redis_server.url,
            "--port",
            str(port),
            *folders,
        ],
        workdir,
        "serve.log",
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_until(lambda: _up(base), server, "orchestrator serve", timeout=60)
        report = run_load(base, sweep_id, args, orch.state, server.pid)
        report["python_api"] = python_api(orch, sweep_id, args.duration / 3, args.rows)
    finally:
        stop([server, coordinator])
        orch.close()
        redis_server.stop()
    print(json.dumps(report))


def _up(base: str) -> bool:
    try:
        return requests.get(f"{base}/health", timeout=1).ok
    except requests.RequestException:
        return False


class Load:
    """What the client and subscriber threads share: the deadline, latencies, errors, events seen."""

    def __init__(self, base: str, sweep_id: str, subscribers: int, rows: int) -> None:
        self.base, self.sweep_id, self.rows = base, sweep_id, rows
        self.stop_at = float("inf")
        self.status: list[float] = []
        self.page: list[float] = []
        self.errors: list[str] = []
        self.received: list[set[int]] = [set() for _ in range(subscribers)]
        self.connected = threading.Barrier(subscribers + 1, timeout=60)

    def client(self) -> None:
        """Poll the status, then a 100-row page at a random offset, until the deadline."""
        session = requests.Session()
        while time.monotonic() < self.stop_at:
            for path, params, into in (
                (f"/sweeps/{self.sweep_id}", None, self.status),
                (
                    f"/sweeps/{self.sweep_id}/results",
                    {"limit": 100, "offset": random.randrange(self.rows - 100)},
                    self.page,
                ),
            ):
                t0 = time.perf_counter()
                try:
                    session.get(self.base + path, params=params, timeout=30).raise_for_status()
                    into.append(time.perf_counter() - t0)
                except requests.RequestException as exc:
                    self.errors.append(type(exc).__name__)

    def subscriber(self, i: int) -> None:
        """Follow the sweep's events, noting every id, until shortly after the deadline."""
        try:
            url = f"{self.base}/sweeps/{self.sweep_id}/events"
            with requests.get(url, stream=True, timeout=600) as res:
                self.connected.wait()
                for line in res.iter_lines(decode_unicode=True):
                    if line.startswith("id:"):
                        self.received[i].add(int(line[3:]))
                    if time.monotonic() > self.stop_at + 3:
                        return
        except (requests.RequestException, threading.BrokenBarrierError) as exc:
            self.errors.append(f"sse:{type(exc).__name__}")


def client_process(
    base: str, sweep_id: str, rows: int, threads: int, duration: float, go: Any, out: Any
) -> None:
    """``threads`` clients in a process of their own, from ``go`` for ``duration`` seconds."""
    load = Load(base, sweep_id, 0, rows)
    go.wait()
    load.stop_at = time.monotonic() + duration
    clients = [threading.Thread(target=load.client, daemon=True) for _ in range(threads)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    out.put((load.status, load.page, load.errors))


def run_load(base: str, sweep_id: str, args: argparse.Namespace, state: SweepState, pid: int) -> dict:
    load = Load(base, sweep_id, args.subscribers, args.rows)
    # Clients in processes of their own, forked before any thread starts: 150 threads of one
    # process measured the driver's GIL (a status answered in 2 ms took 200 ms to be read).
    ctx = multiprocessing.get_context("fork")
    go, out = ctx.Event(), ctx.Queue()
    n = max(1, min(args.client_processes, args.clients))
    shares = [args.clients // n + (k < args.clients % n) for k in range(n)]
    procs = [
        ctx.Process(
            target=client_process, args=(base, sweep_id, args.rows, k, args.duration, go, out), daemon=True
        )
        for k in shares
    ]
    for proc in procs:
        proc.start()
    subscribers = [
        threading.Thread(target=load.subscriber, args=(i,), daemon=True) for i in range(args.subscribers)
    ]
    for thread in subscribers:
        thread.start()
    load.connected.wait()
    meter = CpuMeter({"server": process_tree(pid)})
    started = time.monotonic()
    load.stop_at = started + args.duration
    go.set()
    sent: set[int] = set()
    while time.monotonic() < load.stop_at - 1:
        sent.add(state.event(sweep_id, "info", "benchmark tick"))
        time.sleep(0.2)
    for _ in procs:
        status, page, errors = out.get(timeout=args.duration + 120)
        load.status += status
        load.page += page
        load.errors += errors
    for proc in procs:
        proc.join()
    cpu = meter.spent()["server"]
    wall = time.monotonic() - started
    for thread in subscribers:
        thread.join(timeout=10)
    complete = sum(1 for got in load.received if sent <= got)
    print(
        f"{args.clients} clients, {args.subscribers} SSE subscribers, {wall:.0f} s, {args.rows} rows in the store"
    )
    print(f"  status  (REST)        {percentiles(load.status)}")
    print(f"  100-row page (REST)   {percentiles(load.page)}")
    print(f"  errors {len(load.errors)}   server CPU {cpu:.1f} s ({100 * cpu / wall:.0f} % of one core)")
    print(f"  events sent {len(sent)}; subscribers that received every one: {complete}/{args.subscribers}")
    ordered = sorted(load.status)
    return {
        "status_p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))] if ordered else None,
        "page_p50_ms": 1000 * statistics.median(load.page) if load.page else None,
        "errors": len(load.errors),
        "server_cpu_share": cpu / wall,
        "subscribers_complete": complete,
        "subscribers": args.subscribers,
    }


def python_api(orch: Orchestrator, sweep_id: str, seconds: float, rows: int) -> dict:
    """The same reads through the Python API, one after another in this process."""
    status_lat: list[float] = []
    page_lat: list[float] = []
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        t0 = time.perf_counter()
        orch.status(sweep_id)
        status_lat.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        offset = random.randrange(rows - 100)
        orch.results(sweep_id).iloc[offset : offset + 100]
        page_lat.append(time.perf_counter() - t0)
    print(f"  status  (Python API)  {percentiles(status_lat)}")
    print(f"  100-row page (Python API: loads the dataset, then slices)  {percentiles(page_lat)}")
    return {
        "status_p50_ms": 1000 * statistics.median(status_lat),
        "page_p50_ms": 1000 * statistics.median(page_lat),
    }


if __name__ == "__main__":
    main()
