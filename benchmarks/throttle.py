"""CreateQuantumTask quota shared by 4 worker processes: per-worker limits vs one Redis token bucket.

The fake Braket service enforces a quota of 20 CreateQuantumTask/s (burst 40), answering 429
ThrottlingException above it, as AWS does. Four worker processes submit tasks through
``BraketManagedExecutor`` (real SDK, over HTTP) for a fixed time, in two set-ups:

* ``per-worker``: each worker limits itself to 20/s, which is what Celery's ``rate_limit`` does;
* ``shared``: all workers draw from one token bucket in Redis (the executor's default).

Reported: achieved submit rate, quota utilization (steady state, after the first second),
429s the service sent, and throttling errors that reached a result (retries exhausted).
The last line is JSON for the shared bucket: ``{"quota_utilization": U, "throttle_failures": N}``.

Everything is private: a Redis started here (a free port, a temporary folder), the fake Braket
service and moto's S3 on free ports.

Run: ``.venv/bin/python benchmarks/throttle.py [--seconds 10] [--smoke]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
import uuid
from typing import Any

from harness import parse_args

from orchestrator.redis_server import RedisServer

QUOTA, BURST, WORKERS = 20.0, 40.0, 4
DEVICE = "arn:aws:braket:us-east-1::device/qpu/ionq/Forte-1"


def _worker(
    mode: str,
    index: int,
    redis_url: str,
    prefix: str,
    bucket: str,
    ready: Any,
    go: Any,
    seconds: float,
    out: Any,
) -> None:
    import redis
    from braket.circuits import Circuit

    from core.errors import TransientError
    from core.models import Experiment
    from orchestrator.braket import BraketManagedExecutor
    from orchestrator.store import BraketLedgers

    ledgers = BraketLedgers(redis.Redis.from_url(redis_url), prefix=prefix)
    # per-worker: a private bucket per worker, which is what Celery's rate_limit amounts to.
    private = ledgers.bucket(f"worker-{index}", rate=QUOTA, burst=QUOTA)
    ex = BraketManagedExecutor(ledgers, s3_bucket=bucket, throttle=private if mode == "per-worker" else None)
    circuit = Circuit().h(0).cnot(0, 1)
    ex.connect(DEVICE)  # GetDevice and the HTTP pool, outside the measured window
    ready.set()
    go.wait(60)
    created = failures = 0
    deadline = time.monotonic() + seconds
    seq = 0
    while time.monotonic() < deadline:
        seq += 1
        exp = Experiment(
            sweep_id="bench",
            experiment_id=f"{mode}-{index}-{seq}",
            index=seq,
            project="bench",
            parameters={},
            device=DEVICE,
            resource="braket_qpu",
        )
        try:
            ex.submit(exp, circuit, 1, attempt=1)
            created += 1
        except TransientError as exc:
            failures += "Throttl" in str(exc) or "slot" in str(exc)
    out.put(
        {"created": created, "failures": failures, "retried_429": ex.stats["retried:ThrottlingException"]}
    )


def run(mode: str, env: Any, redis_url: str, seconds: float) -> dict[str, Any]:
    """One set-up: four worker processes, released together, for ``seconds``."""
    env.reset()
    env.fake.configure(create_rate=QUOTA, create_burst=BURST, queue_delay=3600.0)  # tasks need not run
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    # fork, after importing the SDK once here: a spawned worker spends seconds importing Braket.
    # The workers only use their own Redis and HTTP connections, not the services' threads.
    ctx = mp.get_context("fork")
    go, out = ctx.Event(), ctx.Queue()
    readies = [ctx.Event() for _ in range(WORKERS)]
    procs = [
        ctx.Process(
            target=_worker, args=(mode, i, redis_url, prefix, env.bucket, readies[i], go, seconds, out)
        )
        for i in range(WORKERS)
    ]
    for p in procs:
        p.start()
    for ready in readies:
        if not ready.wait(120):
            raise RuntimeError("a worker did not start")
    started = time.time()
    go.set()
    reports = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    stats = env.fake.stats()
    times = [t for t in stats["create_times"] if t >= started]
    steady = [t for t in times if started + 1.0 <= t <= started + seconds]
    return {
        "mode": mode,
        "created": len(times),
        "rate": len(times) / seconds,
        "utilization": len(steady) / (QUOTA * (seconds - 1.0)),
        "server_429": stats["errors"].get("ThrottlingException", 0),
        "throttle_failures": sum(r["failures"] for r in reports),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per set-up")
    args = parse_args(parser, smoke={"seconds": 2.0})
    import orchestrator.braket.executor  # noqa: F401 - imported once, before the workers fork
    from tests.support.braket_env import BraketTestEnv

    server = RedisServer().start()
    try:
        with BraketTestEnv() as env:
            results = [run(mode, env, server.url, args.seconds) for mode in ("per-worker", "shared")]
    finally:
        server.stop()
    print(
        f"quota {QUOTA:.0f} CreateQuantumTask/s (burst {BURST:.0f}), {WORKERS} worker processes, "
        f"{args.seconds:.0f} s each"
    )
    print(f"{'set-up':<12}{'created':>9}{'rate/s':>9}{'util':>7}{'429s sent':>11}{'throttle failures':>19}")
    for r in results:
        print(
            f"{r['mode']:<12}{r['created']:>9}{r['rate']:>9.1f}{r['utilization']:>7.2f}{r['server_429']:>11}"
            f"{r['throttle_failures']:>19}"
        )
    shared = results[-1]
    print(
        json.dumps(
            {
                "quota_utilization": round(shared["utilization"], 3),
                "throttle_failures": shared["throttle_failures"],
            }
        )
    )


if __name__ == "__main__":
    main()
