"""What the benchmarks share: processes, CPU accounting, raw Celery, the ``--smoke`` switch.

``overhead.py`` and ``peers.py`` time the same things the same way: worker processes started
in their own session (so one signal stops a whole pool), a CPU meter per role, and the raw
Celery reference (one task that counts itself in Redis, with our worker settings). A private
Redis is the product's own launcher, ``orchestrator.redis_server.RedisServer().start()``: a
free loopback port and a temporary folder, gone with ``stop()``; never a Redis of the user's.

Run as a script it is the raw Celery worker: ``python benchmarks/harness.py --raw-worker URL``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.embedded import worker_command  # noqa: E402

CONCURRENCY = 2
WARMUP = 50
# How often a driver looks for the end of a timed load: ~0.5 % of a 2-s load at most, and
# little CPU taken from the processes measured on a loaded machine (every 2 ms cost them 2 %).
FINISH_POLL = 0.01

RAW_TASK = "bench.noop"
RAW_QUEUE = "bench"
RAW_COUNTER = "bench:raw:done"
RAW_READY = "bench:raw:ready"


# -- the command line ------------------------------------------------------------------------------

SMOKE_HELP = (
    "the same code path at its smallest size, in seconds: a check that the benchmark still runs "
    "(tests/test_benchmarks.py), not a measurement"
)


def parse_args(
    parser: argparse.ArgumentParser, smoke: dict[str, Any], argv: list[str] | None = None
) -> argparse.Namespace:
    """Parse the command line, with ``--smoke``: then ``smoke`` gives the options' defaults (an
    option given explicitly still wins), so smoke mode runs the very code of a full run."""
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    if "--smoke" in (sys.argv[1:] if argv is None else argv):
        parser.set_defaults(**smoke)
    return parser.parse_args(argv)


# -- processes -------------------------------------------------------------------------------------


def spawn(
    cmd: list[str], workdir: Path, log: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session (see :func:`stop`), output to ``workdir/log``; ``env``:
    variables set beside ours."""
    with open(workdir / log, "wb") as out:
        return subprocess.Popen(
            cmd,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
                **(env or {}),
            },
        )


def wait_until(
    ready: Callable[[], Any],
    procs: subprocess.Popen[bytes] | list[subprocess.Popen[bytes]],
    what: str,
    timeout: float = 240,
    poll: float = 0.05,
) -> None:
    """Poll ``ready`` until true; fail at once if one of ``procs`` failed or all have exited, or
    after ``timeout``."""
    procs = procs if isinstance(procs, list) else [procs]
    deadline = time.monotonic() + timeout
    while not ready():
        codes = [proc.poll() for proc in procs]
        if any(codes) or (None not in codes and not ready()):
            failed = next((p for p in procs if p.returncode), procs[0])
            raise SystemExit(f"{what}: {failed.args[:4]} exited with code {failed.returncode}; see its log")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not done after {timeout} s")
        time.sleep(poll)


def stop(procs: subprocess.Popen[bytes] | list[subprocess.Popen[bytes]], timeout: float = 20) -> None:
    """Warm shutdown (SIGTERM) of each, all at once (a Celery worker takes seconds to stop its
    pool); a whole session is killed if it is not gone after ``timeout``."""
    procs = procs if isinstance(procs, list) else [procs]
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # a Celery worker's pool children follow its warm shutdown
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def orchestrator_worker(url: str, workdir: Path, concurrency: int = CONCURRENCY) -> subprocess.Popen[bytes]:
    """``orchestrator worker -c 2`` on the ``local_cpu`` queue (ready once it is in ``orch:workers``)."""
    return spawn(
        worker_command(["local_cpu"], concurrency, "orch@%h", broker=url), workdir, "orch-worker.log"
    )


def process_tree(pid: int) -> list[psutil.Process]:
    main = psutil.Process(pid)
    return [main, *main.children(recursive=True)]


def redis_process(client: redis.Redis) -> list[psutil.Process]:
    try:
        return [psutil.Process(int(client.info("server")["process_id"]))]
    except (psutil.Error, KeyError, ValueError):
        return []  # not on this machine, or not ours to look at


class CpuMeter:
    """CPU seconds (user + system) spent during the timed window, per role.

    Args:
        processes: role -> its processes, e.g. ``{"driver": [psutil.Process()], "workers":
            process_tree(worker.pid), "redis": redis_process(client)}``.
    """

    def __init__(self, processes: dict[str, list[psutil.Process]]) -> None:
        self.processes = processes
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        out = {}
        for role, procs in self.processes.items():
            total = 0.0
            for proc in procs:
                try:
                    times = proc.cpu_times()
                    total += times.user + times.system
                    if role != "driver":
                        # a child that exits and is waited for moves its time into its parent's
                        # children_* (the coordinator's report process): counted there, not lost.
                        # The driver reaps the peers' processes, which have roles of their own.
                        total += times.children_user + times.children_system
                except psutil.Error:
                    pass
            out[role] = total
        return out

    def spent(self) -> dict[str, float]:
        end = self._read()
        return {role: end[role] - self.start[role] for role in end}


# -- raw Celery ------------------------------------------------------------------------------------


def raw_app(url: str) -> Any:
    """A plain Celery app with our worker settings and one task that sleeps ``ms`` and counts itself."""
    from celery import Celery
    from celery.signals import worker_ready

    app = Celery("bench", broker=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_reject_on_worker_lost=True,
        broker_transport_options={"visibility_timeout": 1800},
        task_default_queue=RAW_QUEUE,
        worker_hijack_root_logger=False,
    )
    counter = redis.Redis.from_url(url)  # connects lazily, in each pool child

    @app.task(name=RAW_TASK)
    def noop(x: int, ms: float = 0.0) -> None:
        if ms:
            time.sleep(ms / 1000)
        counter.incr(RAW_COUNTER)

    @worker_ready.connect(weak=False)
    def _ready(sender: Any = None, **_: Any) -> None:
        counter.set(RAW_READY, 1)

    return app


def raw_worker(url: str, events: bool = False) -> None:
    raw_app(url).worker_main(
        [
            "worker",
            "-Q",
            RAW_QUEUE,
            "-c",
            str(CONCURRENCY),
            "-n",
            "raw@%h",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            *(["-E"] if events else []),
        ]
    )


def run_raw(
    url: str, workdir: Path, loads: list[tuple[int, float]], events: bool = False
) -> list[tuple[float, dict[str, float]]]:
    """Time raw Celery on each ``(tasks, ms per task)`` load, one after the other, on one worker.

    Each load is timed from the first ``send_task`` until its counter reaches the count; returns
    ``(seconds, CPU seconds by role)`` per load.
    """
    client = redis.Redis.from_url(url)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--raw-worker", url]
    worker = spawn([*cmd, *(["--events"] if events else [])], workdir, "raw-worker.log")
    try:
        wait_until(lambda: client.exists(RAW_READY), worker, "raw Celery worker")
        app = raw_app(url)

        def send(count: int, ms: float) -> None:
            with app.producer_or_acquire() as producer:
                for x in range(count):
                    app.send_task(RAW_TASK, args=(x, ms), queue=RAW_QUEUE, producer=producer)

        send(WARMUP, 0.0)
        wait_until(lambda: int(client.get(RAW_COUNTER) or 0) >= WARMUP, worker, "raw warm-up")
        timings = []
        for n, ms in loads:
            client.set(RAW_COUNTER, 0)
            cpu = CpuMeter(
                {
                    "driver": [psutil.Process()],
                    "workers": process_tree(worker.pid),
                    "redis": redis_process(client),
                }
            )
            start = time.perf_counter()
            send(n, ms)
            wait_until(
                lambda n=n: int(client.get(RAW_COUNTER) or 0) >= n, worker, "raw tasks", poll=FINISH_POLL
            )
            timings.append((time.perf_counter() - start, cpu.spent()))
        return timings
    finally:
        stop(worker)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the raw Celery worker of the benchmarks")
    parser.add_argument("--raw-worker", metavar="URL", required=True)
    parser.add_argument("--events", action="store_true")
    args = parser.parse_args()
    raw_worker(args.raw_worker, events=args.events)
