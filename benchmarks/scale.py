"""Scale: schedule a 1,000,000-point grid sweep; seconds to first publish and coordinator peak RSS.

A real coordinator (``orchestrator coordinator --broker ...``) runs in a subprocess against a
private Redis (started here, on a free port, and stopped after), idle until this script submits
a 100 x 100 x 100 grid over ``benchmarks/projects/noop`` through the Python API. No worker runs:

* *first publish*: from the ``submit`` call until the first experiment message is in the broker's
  queue list (polled every millisecond);
* *fill*: until all experiments sit in the pending sorted set (``fill_done``);
* *peak RSS*: the coordinator process's high-water mark (``VmHWM``), read after the fill and a
  few more seconds of its loop.

The last line is JSON: ``{"points": 1000000, "first_publish_s": S, "peak_rss_mb": M}``
(targets: S < 5, M < 500).

Run: ``.venv/bin/python benchmarks/scale.py [--side 100] [--smoke]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import redis
from harness import ROOT, parse_args

from orchestrator.redis_server import RedisServer

NOOP_PROJECT = ROOT / "benchmarks" / "projects" / "noop"
QUEUE = "local_cpu"


def sweep(side: int, adaptive: bool) -> dict[str, object]:
    axis = {"kind": "int", "start": 0, "stop": side - 1}
    return {
        "name": "scale",
        "adaptive_sampling": adaptive,
        "projects": [{"name": "noop", "path": str(NOOP_PROJECT), "entry": "noop:run"}],
        "parameters": {"x": axis, "y": axis, "z": axis},
    }


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (``VmHWM``), else its current RSS."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return psutil.Process(pid).memory_info().rss / 2**20


def wait(
    predicate,
    proc: subprocess.Popen[bytes],
    what: str,
    timeout: float = 240,  # type: ignore[no-untyped-def]
    poll: float = 0.001,
) -> float:
    start = time.perf_counter()
    while not predicate():
        if proc.poll() is not None:
            raise SystemExit(f"{what}: the coordinator exited with code {proc.returncode}; see its log")
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"{what}: not after {timeout} s")
        time.sleep(poll)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=100, help="points per axis of the 3-D grid")
    parser.add_argument("--adaptive", action="store_true", help="adaptive sampling (scrambled initial order)")
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds of coordinator loop after the fill"
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="work in this folder and keep the coordinator log"
    )
    args = parse_args(parser, smoke={"side": 10, "settle": 0.5})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    from orchestrator.api import Orchestrator

    server = RedisServer().start()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    points = args.side**3
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        workdir = Path(tmp) if args.keep is None else args.keep.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "orchestrator.cli", "coordinator", "--broker", server.url]
        cmd += ["--results-dir", str(workdir / "results"), "--state-dir", str(workdir / "state")]
        with open(workdir / "coordinator.log", "wb") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        orch = None
        try:
            wait(lambda: client.hlen("orch:coordinators"), proc, "coordinator start", poll=0.05)
            idle_rss = psutil.Process(proc.pid).memory_info().rss / 2**20
            orch = Orchestrator(
                server.url, coordinate=False, results_dir=workdir / "results", state_dir=workdir / "state"
            )
            config = sweep(args.side, args.adaptive)
            start = time.perf_counter()
            sweep_id = orch.submit(config).execution_id
            submit_s = time.perf_counter() - start
            first_publish_s = submit_s + wait(lambda: client.llen(QUEUE) > 0, proc, "first publish")
            meta = f"orch:sweep:{sweep_id}:meta"
            fill_s = first_publish_s + wait(
                lambda: client.hget(meta, "fill_done") == "1", proc, "fill", poll=0.01
            )
            time.sleep(args.settle)
            peak = peak_rss_mb(proc.pid)
            pending = client.zcard(f"orch:sweep:{sweep_id}:pending:{QUEUE}")
            total = int(client.hget(meta, "total") or 0)
            redis_mb = client.info("memory")["used_memory"] / 2**20
        finally:
            if orch is not None:
                orch.close()
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            server.stop()
    if total != points:
        raise SystemExit(f"expected {points} experiments, the sweep counted {total}")
    print(
        f"{points:,}-point grid sweep ({'adaptive' if args.adaptive else 'index order'}), no workers, "
        "a private Redis"
    )
    print(f"{'measure':<36}{'value':>12}")
    for name, value in [
        ("submit call (s)", f"{submit_s:.3f}"),
        ("first publish (s)", f"{first_publish_s:.3f}"),
        ("all experiments pending (s)", f"{fill_s:.2f}"),
        ("pending after fill", f"{pending:,}"),
        ("coordinator RSS idle (MB)", f"{idle_rss:.0f}"),
        ("coordinator peak RSS (MB)", f"{peak:.0f}"),
        ("Redis used memory (MB)", f"{redis_mb:.0f}"),
    ]:
        print(f"{name:<36}{value:>12}")
    print("targets: first publish < 5 s, peak RSS < 500 MB")
    print(
        json.dumps(
            {"points": points, "first_publish_s": round(first_publish_s, 3), "peak_rss_mb": round(peak, 1)}
        )
    )


if __name__ == "__main__":
    main()
