"""Orchestrator overhead: N no-op experiments through the whole path vs N raw Celery no-op tasks.

Both set-ups use the same Redis (a private one, started here on a free port, flushed between
set-ups and stopped after) and one worker of 2 prefork processes with the same Celery settings (JSON, acks_late,
prefetch 1, reject on worker lost), run one after the other so they do not compete for CPU:

* ``celery``: a plain Celery app with one task that increments a Redis counter. Timed from the
  first ``send_task`` until the counter reaches N.
* ``orchestrator``: a sweep of N points over ``benchmarks/projects/noop`` (``run(x) -> {"y": x}``)
  submitted through the Python API, whose coordinator runs in this process, to a real
  ``orchestrator worker -c 2``. Timed from ``submit`` until the sweep is ``completed``, which the
  coordinator declares only once every result row is in the Parquet dataset (checked after).
  Experiments this short travel several to a message (a batch is about ``batch_seconds`` of
  one worker's work, measured from the experiments' run time); the same sweep with batching
  off (one message per experiment, what experiments longer than that get) is shown as well.

Each side first runs a short warm-up (imports, connections, forked children) outside the timing.
The last line is JSON: ``{"ratio": R, "orchestrator_per_s": X, "celery_per_s": Y}`` (target R >= 0.8).

Run: ``.venv/bin/python benchmarks/overhead.py [--n 5000] [--smoke]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness
import psutil
import redis

from orchestrator.redis_server import RedisServer

NOOP_PROJECT = harness.ROOT / "benchmarks" / "projects" / "noop"


# -- the orchestrator --------------------------------------------------------------------------------


def sweep(name: str, n: int) -> dict[str, Any]:
    return {
        "name": name,
        "adaptive_sampling": False,
        "projects": [{"name": "noop", "path": str(NOOP_PROJECT), "entry": "noop:run"}],
        "parameters": {"x": {"kind": "int", "start": 0, "stop": n - 1}},
    }


def run_orchestrator(
    url: str, n: int, workdir: Path, batch_seconds: float | None = None
) -> tuple[float, dict[str, float]]:
    from orchestrator.api import Orchestrator

    client = redis.Redis.from_url(url, decode_responses=True)
    worker = harness.orchestrator_worker(url, workdir)
    orch = None
    try:
        harness.wait_until(lambda: client.hlen("orch:workers"), worker, "orchestrator worker")
        overrides = {} if batch_seconds is None else {"batch_seconds": batch_seconds}
        # a results folder of its own: the same sweep's earlier results would be reused, not run
        tag = "batched" if batch_seconds is None else f"batch-{batch_seconds:g}"
        orch = Orchestrator(
            url, results_dir=workdir / f"results-{tag}", state_dir=workdir / "state", **overrides
        )
        warm = orch.submit(sweep("noop-warmup", harness.WARMUP)).execution_id
        harness.wait_until(
            lambda: client.hget(f"orch:sweep:{warm}:meta", "state") == "completed", worker, "warm-up sweep"
        )
        cpu = harness.CpuMeter(
            {
                "driver": [psutil.Process()],
                "workers": harness.process_tree(worker.pid),
                "redis": harness.redis_process(client),
            }
        )
        start = time.perf_counter()
        sweep_id = orch.submit(sweep("noop", n)).execution_id
        meta = f"orch:sweep:{sweep_id}:meta"
        harness.wait_until(
            lambda: client.hget(meta, "state") == "completed", worker, "sweep", poll=harness.FINISH_POLL
        )
        elapsed = time.perf_counter() - start
        spent = cpu.spent()
        frame = orch.results(sweep_id)
        done = int((frame["status"] == "completed").sum())
        if len(frame) != n or done != n or frame["experiment_id"].nunique() != n:
            raise SystemExit(
                f"expected {n} completed rows in Parquet, found {len(frame)} rows ({done} completed)"
            )
        return elapsed, spent
    finally:
        if orch is not None:
            orch.close()
        harness.stop(worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="experiments / tasks per set-up")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep its logs")
    args = harness.parse_args(parser, smoke={"n": 100})
    # a SIGTERM (e.g. from `timeout`) still stops the workers through the finally blocks
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    server = RedisServer().start()
    client = redis.Redis.from_url(server.url)
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        workdir = Path(tmp) if args.keep is None else args.keep.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            [(raw_s, raw_cpu)] = harness.run_raw(server.url, workdir, [(args.n, 0.0)])
            client.flushdb()
            # Our workers send task events (-E) so Flower can list experiments: the same for Celery,
            # as a second, like-for-like reference. The target is checked against the plain one.
            [(events_s, events_cpu)] = harness.run_raw(server.url, workdir, [(args.n, 0.0)], events=True)
            client.flushdb()
            ours_s, ours_cpu = run_orchestrator(server.url, args.n, workdir)
            client.flushdb()
            # For reference: the same with one message per experiment (batching off), what Flower
            # shows task by task and what longer experiments always get.
            single_s, single_cpu = run_orchestrator(server.url, args.n, workdir, batch_seconds=0)
        finally:
            server.stop()
    raw_rate, ours_rate, events_rate = args.n / raw_s, args.n / ours_s, args.n / events_s
    print(
        f"{args.n} no-op tasks, {harness.CONCURRENCY} worker processes, a private Redis, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'path':<34}{'seconds':>9}{'per s':>9}   CPU ms per task: {'driver':>7}{'workers':>8}{'redis':>7}"
    )
    for name, secs, rate, cpu in [
        ("celery (send -> all done)", raw_s, raw_rate, raw_cpu),
        ("celery, workers with events (-E)", events_s, events_rate, events_cpu),
        ("orchestrator (submit -> Parquet)", ours_s, ours_rate, ours_cpu),
        ("orchestrator, batching off", single_s, args.n / single_s, single_cpu),
    ]:
        ms = {role: 1000 * value / args.n for role, value in cpu.items()}
        print(
            f"{name:<34}{secs:>9.2f}{rate:>9.1f}{'':>19}{ms['driver']:>7.2f}{ms['workers']:>8.2f}"
            f"{ms['redis']:>7.2f}"
        )
    print(
        f"ratio {ours_rate / raw_rate:.3f} (target >= 0.8); against Celery with events "
        f"{ours_rate / events_rate:.3f}; with batching off {args.n / single_s / raw_rate:.3f}"
    )
    print(
        json.dumps(
            {
                "ratio": round(ours_rate / raw_rate, 3),
                "orchestrator_per_s": round(ours_rate, 1),
                "celery_per_s": round(raw_rate, 1),
                "ratio_vs_celery_with_events": round(ours_rate / events_rate, 3),
                "ratio_batching_off": round(args.n / single_s / raw_rate, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
