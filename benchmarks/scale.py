"""Scale: a sweep of 1, 10 or 100 million points in constant memory, and an adaptive refit on 10 M.

Everything runs against a private Redis started here (``RedisServer``: a free loopback port, a
temporary folder, stopped after); never a Redis of the user's. A real coordinator
(``orchestrator coordinator --broker ...``) runs in a subprocess, idle until this script submits
an ``x * y * z`` grid of ``--points`` points over ``benchmarks/projects/noop``:

* *first publish*: from the ``submit`` call until the first experiment message is in the queue;
* *first window*: once the coordinator has materialised the first chunks and published its
  window (no worker yet): its peak RSS (``VmHWM``) and Redis ``used_memory``;
* *after 10 k results*: one ``orchestrator worker`` runs until 10,000 experiments are done;
  the same two figures again (the pending state must not have grown with the sweep);
* *adaptive refit + re-score*: in this process, an adaptive sweep over a 10 M-point space
  (``--adaptive-points``) with 500 results: one refit (the GP on the results, scoring its
  candidate pool of ``candidate_pool`` points) plus the coordinator's step that materialises its
  picks, timed together.

Targets (issue 23): 100 M points: first publish < 1 s, coordinator peak RSS < 300 MB, Redis
< 200 MB; refit + re-score on 10 M < 5 s. The last line is JSON.

Run: ``.venv/bin/python benchmarks/scale.py --points 1e8 [--results 10000] [--smoke]``
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import redis
from harness import ROOT, orchestrator_worker, parse_args, spawn, stop, wait_until

from orchestrator.redis_server import RedisServer

NOOP_PROJECT = ROOT / "benchmarks" / "projects" / "noop"
QUEUE = "local_cpu"
TARGETS = {"first_publish_s": 1.0, "peak_rss_mb": 300.0, "redis_mb": 200.0, "refit_s": 5.0}


def sweep(points: int, adaptive: bool, name: str = "scale") -> dict[str, object]:
    """An ``x * y * z`` integer grid of exactly ``points`` points (10 x 10 x points/100)."""
    if points % 100:
        raise SystemExit(f"--points must be a multiple of 100, not {points}")

    def axis(n: int) -> dict[str, object]:
        return {"kind": "int", "start": 0, "stop": n - 1}

    config: dict[str, object] = {
        "name": name,
        "adaptive_sampling": adaptive,
        "projects": [{"name": "noop", "path": str(NOOP_PROJECT), "entry": "noop:run"}],
        "parameters": {"x": axis(10), "y": axis(10), "z": axis(points // 100)},
    }
    if adaptive:
        config |= {"objectives": [{"metric": "y", "goal": "maximize"}], "seed": 7}
    return config


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (``VmHWM``), else its current RSS."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return psutil.Process(pid).memory_info().rss / 2**20


def redis_mb(client: redis.Redis) -> float:
    return float(client.info("memory")["used_memory"]) / 2**20


def grid_run(url: str, workdir: Path, points: int, results: int) -> dict[str, float]:
    """Submit the grid to a coordinator subprocess; the figures of the module docstring."""
    from orchestrator.api import Orchestrator

    client = redis.Redis.from_url(url, decode_responses=True)
    coordinator = spawn(
        [sys.executable, "-m", "orchestrator.cli", "coordinator", "--broker", url]
        + ["--results-dir", str(workdir / "results"), "--state-dir", str(workdir / "state")],
        workdir,
        "coordinator.log",
    )
    worker = None
    orch = Orchestrator(url, coordinate=False, results_dir=workdir / "results", state_dir=workdir / "state")
    try:
        wait_until(lambda: client.hlen("orch:coordinators"), coordinator, "coordinator start")
        base_mb = redis_mb(client)
        start = time.perf_counter()
        sweep_id = orch.submit(sweep(points, adaptive=False)).execution_id
        submit_s = time.perf_counter() - start
        wait_until(lambda: client.llen(QUEUE) > 0, coordinator, "first publish", poll=0.001)
        first_publish_s = time.perf_counter() - start
        meta, pending = f"orch:sweep:{sweep_id}:meta", f"orch:sweep:{sweep_id}:pending:{QUEUE}"
        time.sleep(1.0)  # the first chunks and the window: what the coordinator holds before any result
        figures = {
            "submit_s": submit_s,
            "first_publish_s": first_publish_s,
            "window_rss_mb": peak_rss_mb(coordinator.pid),
            "window_redis_mb": redis_mb(client),
            "window_pending": float(client.zcard(pending)),
            "redis_base_mb": base_mb,
        }
        worker = orchestrator_worker(url, workdir)
        started = time.perf_counter()
        wait_until(
            lambda: int(client.hget(meta, "n_completed") or 0) >= results,
            [coordinator, worker],
            f"{results} results",
            timeout=900,
            poll=0.1,
        )
        figures["results_s"] = time.perf_counter() - started
        stop(worker)
        worker = None
        figures |= {
            "peak_rss_mb": peak_rss_mb(coordinator.pid),
            "redis_mb": redis_mb(client),
            "pending_after": float(client.zcard(pending)),
            "cursor": float(client.hget(meta, "fill_cursor") or 0),
            "status_pending": float(orch.status(sweep_id).counts["pending"]),
            "status_total": float(orch.status(sweep_id).total or 0),
        }
        orch.cancel(sweep_id)
        return figures
    finally:
        orch.close()
        stop([p for p in (worker, coordinator) if p is not None])


def refit_run(url: str, workdir: Path, points: int, n_results: int = 500) -> dict[str, float]:
    """Time one refit + re-score of an adaptive sweep over ``points`` points with ``n_results``."""
    from core.config import validate_sweep
    from core.plan import SweepPlan
    from core.results import ResultStore
    from core.settings import load_settings
    from orchestrator.coordinator import Coordinator
    from orchestrator.dispatch import Dispatcher
    from orchestrator.optimizer.service import refit_sweep
    from orchestrator.scheduler import Scheduler
    from orchestrator.store import SweepState, connect
    from workers.app import create_app

    settings = load_settings(broker_url=url, results_dir=workdir / "refit", publish_window=16)
    state, store = SweepState(connect(url)), ResultStore(settings.results_dir)
    config = validate_sweep(sweep(points, adaptive=True, name="scale-adaptive"))
    sid = Scheduler(state, store, settings).schedule_sweep(config).execution_id
    coordinator = Coordinator(state, store, Dispatcher(create_app(settings)), settings, optimize_inline=False)
    coordinator.step(block_ms=1)
    state.set_state(sid, "paused")  # nothing more is published: the results below are made up
    plan = SweepPlan(config, json.loads(state.meta(sid)["code_versions"]))
    rng = np.random.default_rng(0)
    for point in rng.choice(plan.space.size, n_results, replace=False).tolist():
        exp = plan.experiment(int(point))
        p = exp.parameters
        value = float(
            np.exp(-((p["x"] - 7) ** 2 + (p["y"] - 2) ** 2) / 8 - ((p["z"] - points / 300) / points) ** 2)
        )
        row = {"index": exp.index, "experiment_id": exp.experiment_id, "status": "completed", "attempt": 1}
        row |= {"sweep_id": sid, "project_name": "noop", "repeat": 0}
        row |= {"parameters": p, "metrics": {"y": value}}
        state.record(sid, exp.index, exp.experiment_id, row, status="completed", final=True)
    state.set_state(sid, "running")
    refit_sweep(state, sid, pool_size=settings.candidate_pool)  # warm: kernel fit and imports
    start = time.perf_counter()
    rec = refit_sweep(state, sid, pool_size=settings.candidate_pool)
    refit_s = time.perf_counter() - start
    coordinator.step(block_ms=1)  # materialises the picks (with the reuse check) and re-publishes
    total_s = time.perf_counter() - start
    picked = connect(url).scard(f"orch:sweep:{sid}:picked")
    assert rec is not None
    return {
        "refit_s": total_s,
        "refit_only_s": refit_s,
        "refit_pool": float(min(settings.candidate_pool, plan.space.size)),
        "refit_picked": float(picked),
        "refit_phase_model": float(rec.phase == "model"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=float, default=1e8, help="grid points (1e6, 1e7, 1e8)")
    parser.add_argument("--results", type=int, default=10_000, help="results run before the second look")
    parser.add_argument("--adaptive-points", type=float, default=1e7, help="space of the adaptive refit")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep the logs")
    args = parse_args(parser, smoke={"points": 1e4, "results": 200, "adaptive_points": 1e4})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    points, adaptive_points = int(args.points), int(args.adaptive_points)

    server = RedisServer().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            workdir = Path(tmp) if args.keep is None else args.keep.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
            figures = grid_run(server.url, workdir, points, args.results)
            figures |= refit_run(server.url, workdir, adaptive_points)
    finally:
        server.stop()

    f = figures
    print(
        f"{points:,}-point grid sweep, index order; one worker for the first {args.results:,} results; "
        "a private Redis"
    )
    rows = [
        ("submit call (s)", f"{f['submit_s']:.3f}", ""),
        ("first publish (s)", f"{f['first_publish_s']:.3f}", f"< {TARGETS['first_publish_s']:g}"),
        ("pending after the first window", f"{f['window_pending']:,.0f}", ""),
        ("coordinator peak RSS, first window (MB)", f"{f['window_rss_mb']:.0f}", ""),
        ("Redis used_memory, first window (MB)", f"{f['window_redis_mb']:.1f}", ""),
        (f"{args.results:,} results (s)", f"{f['results_s']:.1f}", ""),
        (f"pending after {args.results:,} results", f"{f['pending_after']:,.0f}", ""),
        (
            f"coordinator peak RSS after {args.results:,} results (MB)",
            f"{f['peak_rss_mb']:.0f}",
            f"< {TARGETS['peak_rss_mb']:g}",
        ),
        (
            f"Redis used_memory after {args.results:,} results (MB)",
            f"{f['redis_mb']:.1f}",
            f"< {TARGETS['redis_mb']:g}",
        ),
        ("status: pending / total", f"{f['status_pending']:,.0f} / {f['status_total']:,.0f}", ""),
        (
            f"adaptive refit + re-score, {adaptive_points:,} points, 500 results (s)",
            f"{f['refit_s']:.2f}",
            f"< {TARGETS['refit_s']:g}",
        ),
        ("  of which the refit (s)", f"{f['refit_only_s']:.2f}", ""),
        (
            "  candidates scored / picked ahead of the cursor",
            f"{f['refit_pool']:,.0f} / {f['refit_picked']:,.0f}",
            "",
        ),
    ]
    print(f"{'measure':<62}{'value':>16}{'target':>10}")
    for name, value, target in rows:
        print(f"{name:<62}{value:>16}{target:>10}")
    met = (
        f["first_publish_s"] < TARGETS["first_publish_s"]
        and f["peak_rss_mb"] < TARGETS["peak_rss_mb"]
        and f["redis_mb"] < TARGETS["redis_mb"]
        and f["refit_s"] < TARGETS["refit_s"]
    )
    print(f"targets {'met' if met else 'NOT met'}")
    print(json.dumps({"points": points, **{k: round(v, 3) for k, v in f.items()}, "targets_met": met}))


if __name__ == "__main__":
    main()
