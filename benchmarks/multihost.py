"""Many hosts: what shipping a sweep's code costs, against the same project shared on disk.

One run, on a private ``redis-server`` (``RedisServer``), with ``--hosts`` "hosts" (default 4):
each an ``orchestrator worker -c 1`` process in a folder of its own with its own
``ORCHESTRATOR_STATE_DIR``, so its own code cache, as in ``tests/orchestrator/test_many_hosts.py``;
one ``orchestrator coordinator`` process; sweeps submitted from here through the Python API
(``coordinate=False``), as in ``peers.py``. The project is made in a temporary folder: a no-op
``run(x, ms=0)`` that sleeps ``ms`` milliseconds, and ``--data-mb`` (default 5) MB of random
bytes in ``data/`` (gzip cannot shrink them: the archive is as large as the files). It runs as
``code: shipped`` (packed at submit, stored in Redis, fetched once by each host into
``<state_dir>/code/<digest>``) and as ``code: shared`` (run in place from the same folder).

* **first result**: ``--rounds`` rounds (default 3), each with new code (``version.txt``
  changes, so the archive has a new hash): a sweep of ``--n-first`` experiments of
  ``--ms`` ms with every host's cache cold, then a second sweep of the same code (other ``x``,
  so nothing is reused: a completed experiment with the same project, code version and
  parameters would be) with every cache warm. Seconds from ``submit`` (packing included) until
  the first experiment has recorded its result in Redis (``orch:sweep:<id>:terminal``).
* **bytes read from the store**: the ``code <digest> fetched (<n> bytes)`` lines of each host's
  log (``workers/code_cache.py``, at INFO), per host and per sweep; expected: one fetch per host
  per hash, none for a hash the host has.
* **no-op throughput**: ``--n-noop`` no-op experiments per sweep (shipped code, cached), with
  the results under a local folder and on moto's S3 server over HTTP (``s3://``, the coordinator
  restarted with ``--results-dir s3://...`` and the AWS variables of ``tests/support/s3.py``, as
  ``s3_server.py`` sets them), in the order local, S3, S3, local (``--repeats 2``) so that drift
  cancels; timed from ``submit`` until the sweep is ``completed`` (every row in Parquet); ratio
  S3 / local. The table splits it: ``submit``'s own time, until every result is in Redis, and
  from then until ``completed`` (the last writes to the store).
* **10-ms utilization**: ``--n-short`` experiments of ``--ms`` ms per sweep, shared, shipped,
  shipped, shared; ideal time (experiments x ms / worker processes) over the time from
  ``submit`` to ``completed``; ratio shipped / shared. The shipped code is cached by then (its
  cold cost is the first-result figure); the time of ``submit`` itself (packing) is shown apart.

Each sweep's rows are checked in Parquet (all completed; shipped: the archive's name as
their code version). ``multihost_report.py`` prints the tables; the last line is JSON:
``{"cold_first_result_s", "warm_first_result_s", "fetches_per_host", "s3_vs_local_throughput",
"shipped_vs_shared_utilization"}`` (medians over rounds; fetches per host per hash shipped).
Targets, printed beside the figures and never asserted: one fetch per host per hash; a cold
first result under 2 s more than a warm one; ``s3_vs_local_throughput >= 0.8``;
``shipped_vs_shared_utilization >= 0.97``.

Run: ``.venv/bin/python benchmarks/multihost.py [--hosts 4] [--rounds 3] [--n-noop 10000]
[--n-short 2000] [--keep DIR] [--smoke]`` (moto comes with the ``test`` extra).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
from harness import (
    FINISH_POLL,
    CpuMeter,
    parse_args,
    process_tree,
    redis_process,
    spawn,
    stop,
    wait_until,
)
from multihost_report import report
from s3_server import start_moto

from core.archive import pack
from orchestrator.embedded import worker_command
from orchestrator.redis_server import RedisServer

TIMEOUT = 600  # seconds any one sweep may take before the run gives up (and cleans up)
FIRST_POLL = 0.002  # how often the driver looks for a sweep's first result
BUCKET = "bench-multihost"
FETCH = re.compile(r"code (\w+) fetched \((\d+) bytes\) into (\S+)")

MODULE = '''"""The benchmark's project: sleeps ``ms`` milliseconds; ``data/`` ships with it."""

import time


def run(x, ms=0):
    if ms:
        time.sleep(ms / 1000)
    return {"y": x}
'''


# -- the project and the hosts ---------------------------------------------------------------------


def make_project(folder: Path, data_mb: float) -> Path:
    """The project folder: ``mh.py``, ``version.txt`` and ``data_mb`` MB of random bytes in 1-MB files."""
    (folder / "data").mkdir(parents=True)
    left, i = int(data_mb * 2**20), 0
    while left > 0:
        size = min(left, 2**20)
        (folder / "data" / f"part{i:02d}.bin").write_bytes(os.urandom(size))
        left, i = left - size, i + 1
    (folder / "mh.py").write_text(MODULE)
    (folder / "version.txt").write_text("0\n")
    return folder


def start_host(url: str, workdir: Path, name: str, concurrency: int) -> subprocess.Popen[bytes]:
    """An ``orchestrator worker`` in ``workdir/name`` with its own state folder (its code cache),
    logging at INFO (the code cache's fetch lines) to ``workdir/name/worker.log``."""
    home = workdir / name
    home.mkdir()
    cmd = worker_command(["local_cpu"], concurrency, f"{name}@%h", broker=url, loglevel="INFO")
    env = {"PYTHONUNBUFFERED": "1", "ORCHESTRATOR_STATE_DIR": str(home / ".orchestrator")}
    return spawn(cmd, home, "worker.log", env=env)


def fetches(log: Path) -> list[tuple[str, int]]:
    """The code fetches a host's log tells of: ``(digest, bytes)`` each, in order."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [(Path(m.group(3)).name, int(m.group(2))) for m in FETCH.finditer(text)]


# -- the sweeps ------------------------------------------------------------------------------------


@dataclass
class Run:
    """One timed sweep."""

    name: str
    code: str  # shipped | shared
    n: int
    ms: float
    results: str  # local | s3
    submit_s: float = 0.0  # submit's own time (validation, packing, storing the archive)
    first_s: float = 0.0  # submit to the first result in Redis
    last_s: float = 0.0  # submit to every result in Redis
    total_s: float = 0.0  # submit to completed (every row in Parquet)
    code_version: str = ""
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by role, submit to completed
    fetched: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # host -> its fetches


class Bench:
    """The processes of the run and the sweeps it submits."""

    def __init__(self, url: str, workdir: Path, project: Path, hosts: list[str], concurrency: int) -> None:
        self.url, self.workdir, self.project = url, workdir, project
        self.hosts, self.concurrency = hosts, concurrency
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.coordinator: subprocess.Popen[bytes] | None = None
        self.results: str | None = None  # where the running coordinator writes
        self.orch: Any = None
        self.next_x = 0  # every sweep gets x values of its own: nothing is ever reused
        self.seen = {host: 0 for host in hosts}  # fetch lines already given to a sweep
        self.version = 0
        self.digest = pack(project).digest  # the shipped archive's name, as the project is now
        self.runs: list[Run] = []

    @property
    def procs(self) -> list[subprocess.Popen[bytes]]:
        return [*self.workers, *([self.coordinator] if self.coordinator else [])]

    def start_workers(self) -> None:
        for host in self.hosts:
            self.workers.append(start_host(self.url, self.workdir, host, self.concurrency))
        wait_until(lambda: self.client.hlen("orch:workers") >= len(self.hosts), self.workers, "the hosts")

    def use_results(self, where: str, location: str) -> None:
        """(Re)start the coordinator and the API on results ``location``, and warm them up."""
        from orchestrator.api import Orchestrator

        if self.results == where:
            return
        self.close_coordinator()
        settings = [
            "--broker",
            self.url,
            "--results-dir",
            location,
            "--state-dir",
            str(self.workdir / "state"),
        ]
        self.coordinator = spawn(
            [sys.executable, "-m", "orchestrator.cli", "coordinator", *settings],
            self.workdir,
            f"coordinator-{where}.log",
        )
        self.orch = Orchestrator(
            self.url, coordinate=False, results_dir=location, state_dir=self.workdir / "state"
        )
        self.results = where
        # untimed: the new coordinator's start, its first writes to the store, the workers' first runs
        self.sweep(f"warmup-{where}", "shared", 4 * len(self.hosts), 10.0, record=False)
        self.sweep(f"warmup-{where}-noop", "shared", 50, 0.0, record=False)

    def close_coordinator(self) -> None:
        if self.orch is not None:
            self.orch.close()
            self.orch = None
        if self.coordinator is not None:
            stop(self.coordinator)
            self.coordinator = None
        self.results = None

    def close(self) -> None:
        try:
            self.close_coordinator()
        finally:
            stop(self.workers)

    def sweep(self, name: str, code: str, n: int, ms: float, record: bool = True) -> Run:
        project: dict[str, Any] = {"name": "mh", "path": str(self.project), "entry": "mh:run", "code": code}
        if ms:
            project["fixed"] = {"ms": ms}
        config = {
            "name": name,
            "adaptive_sampling": False,
            "projects": [project],
            "parameters": {"x": {"kind": "int", "start": self.next_x, "stop": self.next_x + n - 1}},
        }
        self.next_x += n
        run = Run(name, code, n, ms, str(self.results))
        procs = self.procs
        cpu = CpuMeter(
            {
                "driver": [psutil.Process()],  # and moto's S3 server, a thread of it
                "coordinator": process_tree(procs[-1].pid),
                "workers": [p for w in self.workers for p in process_tree(w.pid)],
                "redis": redis_process(self.client),
            }
        )
        start = time.perf_counter()
        sweep_id = self.orch.submit(config).execution_id
        run.submit_s = time.perf_counter() - start
        terminal, meta = f"orch:sweep:{sweep_id}:terminal", f"orch:sweep:{sweep_id}:meta"
        wait_until(
            lambda: self.client.hlen(terminal) > 0, procs, f"{name}: a first result", TIMEOUT, FIRST_POLL
        )
        run.first_s = time.perf_counter() - start
        wait_until(
            lambda: self.client.hlen(terminal) >= n, procs, f"{name}: every result", TIMEOUT, FINISH_POLL
        )
        run.last_s = time.perf_counter() - start
        wait_until(
            lambda: self.client.hget(meta, "state") == "completed",
            procs,
            f"{name}: completion",
            TIMEOUT,
            FINISH_POLL,
        )
        run.total_s = time.perf_counter() - start
        run.cpu = cpu.spent()
        frame = self.orch.results(sweep_id)
        done = int((frame["status"] == "completed").sum())
        if len(frame) != n or done != n or frame["experiment_id"].nunique() != n:
            raise SystemExit(
                f"{name}: expected {n} completed rows in Parquet, found {len(frame)} ({done} completed)"
            )
        versions = set(frame["code_version"])
        expected = f"sha256:{self.digest}" if code == "shipped" else None
        if len(versions) != 1 or (expected and versions != {expected}):
            raise SystemExit(f"{name}: rows of code {versions}, expected {expected or 'one version'}")
        run.code_version = versions.pop()
        for host in self.hosts:
            seen = fetches(self.workdir / host / "worker.log")
            run.fetched[host], self.seen[host] = seen[self.seen[host] :], len(seen)
        if record:
            self.runs.append(run)
        return run

    def new_code(self) -> str:
        """Edit the project (a new archive hash); returns the new archive's digest.

        The edit is to a data file, not to ``mh.py``: a worker process that ran the shared folder
        less than a second before would run its old module (``adapters.loading.RESCAN_SECONDS``).
        """
        self.version += 1
        (self.project / "version.txt").write_text(f"{self.version}\n")
        self.digest = pack(self.project).digest
        return self.digest


# -- the run ---------------------------------------------------------------------------------------


def measure(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    local = str(bench.workdir / "results")
    bench.start_workers()
    bench.use_results("local", local)

    # first result, cold and warm; fetches
    digests = []
    for r in range(1, args.rounds + 1):
        digests.append(bench.new_code())
        bench.sweep(f"cold-{r}", "shipped", args.n_first, args.ms)
        bench.sweep(f"warm-{r}", "shipped", args.n_first, args.ms)

    # 10-ms utilization, shared and shipped (cached), alternating
    for i, code in enumerate(abba("shared", "shipped", args.repeats)):
        bench.sweep(f"util-{code}-{i}", code, args.n_short, args.ms)

    # no-op throughput, local and S3 results, alternating
    moto = None
    try:
        for i, where in enumerate(abba("local", "s3", args.repeats)):
            if where == "s3" and moto is None:
                moto, _ = start_moto(BUCKET)
            bench.use_results(where, local if where == "local" else f"s3://{BUCKET}/results")
            bench.sweep(f"noop-{where}-{i}", "shipped", args.n_noop, 0.0)
    finally:
        bench.close_coordinator()
        if moto is not None:
            moto.stop()
    return {"digests": digests}


def abba(a: str, b: str, repeats: int) -> list[str]:
    """``a b b a a b ...``: each side as often, early and late alike."""
    out: list[str] = []
    for i in range(repeats):
        out += [a, b] if i % 2 == 0 else [b, a]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=4, help="worker hosts (processes with their own cache)")
    parser.add_argument("--concurrency", type=int, default=1, help="pool processes per host")
    parser.add_argument(
        "--data-mb", type=float, default=5.0, help="MB of random data shipped with the project"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="cold and warm sweeps, each round with new code"
    )
    parser.add_argument("--n-first", type=int, default=40, help="experiments of a cold or warm sweep")
    parser.add_argument("--n-short", type=int, default=2_000, help="short experiments per utilization sweep")
    parser.add_argument("--n-noop", type=int, default=10_000, help="no-op experiments per throughput sweep")
    parser.add_argument("--ms", type=float, default=10.0, help="milliseconds of one short experiment")
    parser.add_argument("--repeats", type=int, default=2, help="sweeps per side of each comparison")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep its logs")
    args = parse_args(
        parser,
        smoke={
            "hosts": 2,
            "data_mb": 1.0,
            "rounds": 1,
            "n_first": 8,
            "n_short": 40,
            "n_noop": 100,
            "repeats": 1,
        },
    )
    # a SIGTERM (e.g. from `timeout`) still stops every process through the finally blocks
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    hosts = [f"host-{i}" for i in range(args.hosts)]
    with tempfile.TemporaryDirectory(prefix="bench-multihost-") as tmp:
        workdir = Path(tmp) if args.keep is None else args.keep.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        project = make_project(workdir / "project", args.data_mb)
        archive_bytes = len(pack(project).data)
        server = RedisServer().start()
        bench = Bench(server.url, workdir, project, hosts, args.concurrency)
        try:
            extra = measure(bench, args)
        finally:
            try:
                bench.close()
            finally:
                server.stop()
    report(bench.runs, bench.hosts, args, archive_bytes, extra["digests"])


if __name__ == "__main__":
    main()
