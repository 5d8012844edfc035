"""Paid work under faults: 100 experiments on a QPU and SV1, 2 workers SIGKILLed at random.

The fake Braket service (real SDK over HTTP, results in moto's S3) injects 10 % 429s, 10 % 5xx,
10 % lost CreateQuantumTask responses (the task exists, the caller hears a 500) and 10 % FAILED
tasks. Two worker processes (2 pool processes each) take the paid queues; every 6-10 s one is
SIGKILLed and a new one started, for the first 150 s (``--storm``); then the survivors finish
(at most 5 minutes in all, ``--bound``; tasks still in flight at the bound count as lost and
reserved). Everything is private: a Redis started here (a free port, a temporary folder), the
fake Braket service and moto's S3 on free ports; all stopped at the end.

Money is then checked three ways against the service's own record:

* ``double_paid``: tasks created beyond one per client token, plus experiments with more than one
  COMPLETED task;
* ``paid_results_lost``: COMPLETED tasks whose result is not a completed row in Parquet;
* ``overspend_usd``: what the service billed beyond the budget, plus any gap between the
  service's bill, the Parquet costs and the ledger's ``spent``;
* ``reserved_left_usd``: reservations still held once the sweeps ended.

The last line is JSON: ``{"experiments", "tasks_created", "double_paid", "paid_results_lost",
"overspend_usd", "reserved_left_usd"}``; the target is 0 for the last four.

Run: ``.venv/bin/python benchmarks/paid_faults.py [--seed 1] [--smoke]``
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from harness import ROOT, parse_args

from orchestrator.embedded import worker_command
from orchestrator.redis_server import RedisServer

QAOA = ROOT / "examples" / "projects" / "qaoa_maxcut"
IONQ = "arn:aws:braket:us-east-1::device/qpu/ionq/Forte-1"
SV1 = "arn:aws:braket:::device/quantum-simulator/amazon/sv1"
# Seconds between SIGKILLs. A fresh worker needs a few seconds on a busy 2-core machine before its
# first CreateQuantumTask (imports, GetDevice through injected 429s/5xx): killed every 2-4 s,
# no worker ever submitted anything in 276 s here.
KILL_EVERY_S = (6.0, 10.0)


def sweep(name: str, device: str, resource: str, n: int, budget: float) -> dict:
    return {
        "name": name,
        "projects": [{"name": "qaoa", "path": str(QAOA), "device": device, "resource": resource}],
        "parameters": {
            "gamma": [round(0.01 * (i + 1), 4) for i in range(n)],
            "beta": [0.3],
            "p": [1],
            "graph": ["triangle"],
            "shots": [100],
        },
        "adaptive_sampling": False,
        "budget_limit": budget,
    }


class Worker:
    def __init__(self, broker: str, name: str, folder: Path, env: dict[str, str]) -> None:
        self.name = f"{name}@bench"
        cmd = worker_command(["braket_qpu", "braket_sim"], 2, self.name, broker=broker)
        self.log = open(folder / f"worker-{name}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.log.closed:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--experiments", type=int, default=50, help="per sweep (one QPU, one SV1)")
    parser.add_argument(
        "--budget", type=float, default=100.0, help="$ per sweep: 50 IonQ tasks of 100 shots are $415"
    )
    parser.add_argument(
        "--storm", type=float, default=150.0, help="seconds of kills; then in-flight tasks end and settle"
    )
    parser.add_argument("--bound", type=float, default=300.0, help="seconds for the whole run")
    args = parse_args(parser, smoke={"experiments": 4, "budget": 20.0, "storm": 12.0, "bound": 90.0})

    import redis

    from orchestrator import Orchestrator
    from orchestrator.braket.prices import load_price_table
    from orchestrator.store.budget import BudgetLedger
    from orchestrator.store.submissions import SubmissionStore
    from tests.support.braket_env import BraketTestEnv

    server = RedisServer().start()
    atexit.register(server.stop)
    client = redis.Redis.from_url(server.url)
    rng = random.Random(args.seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="paid-faults-") as tmp, BraketTestEnv() as env:
        folder = Path(tmp)
        os.chdir(folder)
        env.admin.faults(
            throttle_probability=0.1,
            error_probability=0.1,
            lost_response_probability=0.1,
            fail_probability=0.1,
            queue_delay=0.5,
            seed=args.seed,
        )
        child = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "ORCHESTRATOR_BRAKET_S3_BUCKET": env.bucket,
            "ORCHESTRATOR_POLL_INTERVAL": "0.5",
            "ORCHESTRATOR_VISIBILITY_TIMEOUT": "8",
            "ORCHESTRATOR_LEASE_TTL": "2",
            "ORCHESTRATOR_RETRY_BACKOFF": "0.2",
            "ORCHESTRATOR_RETRY_BACKOFF_MAX": "2",
            "ORCHESTRATOR_MAX_RETRIES": "50",
            "ORCHESTRATOR_STATE_DIR": str(folder / ".orchestrator"),
        }
        os.environ.update(
            {k: child[k] for k in ("ORCHESTRATOR_BRAKET_S3_BUCKET", "ORCHESTRATOR_POLL_INTERVAL")}
        )
        workers = {n: Worker(server.url, n, folder, child) for n in ("a", "b")}
        # never leave workers behind (an interrupted run's would take the next run's messages)
        atexit.register(lambda: [w.kill() for w in workers.values()])
        kills = 0
        with Orchestrator(server.url, worker_lost_after=3) as orch:
            ids = [
                orch.submit(sweep("qpu", IONQ, "braket_qpu", args.experiments, args.budget)).execution_id,
                orch.submit(sweep("sim", SV1, "braket_sim", args.experiments, args.budget)).execution_id,
            ]
            next_kill = time.monotonic() + rng.uniform(*KILL_EVERY_S)
            while time.monotonic() - started < args.bound - 30:
                states = [orch.status(s) for s in ids]
                if all(
                    s.state in ("completed", "cancelled")
                    or (s.state == "paused" and s.counts["running"] == 0)
                    for s in states
                ):
                    break
                # kill only a worker that is up (a worker takes seconds to start on a busy machine)
                ready = sorted(n for n, w in workers.items() if client.hexists("orch:workers", w.name))
                storm = time.monotonic() - started < args.storm  # then the survivors finish the work
                if storm and time.monotonic() >= next_kill and ready:
                    victim = rng.choice(ready)
                    workers[victim].kill()
                    kills += 1
                    workers[victim] = Worker(server.url, f"{victim}{kills}", folder, child)
                    next_kill = time.monotonic() + rng.uniform(*KILL_EVERY_S)
                time.sleep(0.2)
            finals = {s: orch.status(s) for s in ids}
            frames = [orch.results(s) for s in ids]
        for worker in workers.values():
            worker.kill(signal.SIGTERM)
        stats = env.admin.stats()
        prices = load_price_table()
        billed = {
            arn: prices.task_cost(
                b["device"], b["shots"], None if b["duration_ms"] is None else b["duration_ms"] / 1000
            )
            for arn, b in stats["billed"].items()
        }
        store = SubmissionStore(client)
        completed_per_exp: Counter[str] = Counter()
        for arn, state in stats["tasks"].items():
            if state == "COMPLETED" and (record := store.by_task(arn)):
                completed_per_exp[record.experiment_id] += 1
        rows = [row for frame in frames for row in frame.to_dict("records")]
        recorded = {json.loads(r["extra"]).get("task_arn") for r in rows if r["status"] == "completed"}
        ledger = BudgetLedger(client)
        spent = sum(ledger.status(s).spent for s in ids)
        reserved = sum(ledger.status(s).reserved for s in ids)
        service_bill = sum(billed.values())
        parquet = float(sum(frame["cost"].fillna(0).sum() for frame in frames))
        over_budget = sum(max(0.0, ledger.status(s).spent - args.budget) for s in ids)
        result = {
            "experiments": 2 * args.experiments,
            "tasks_created": stats["created_total"],
            "double_paid": sum(n - 1 for n in stats["created_per_token"].values())
            + sum(n - 1 for n in completed_per_exp.values()),
            "paid_results_lost": len(set(billed) - recorded),
            # to 1/100 cent: the ledger counts integer micro-dollars, one rounding per task
            "overspend_usd": round(over_budget + abs(service_bill - parquet) + abs(service_bill - spent), 4),
            "reserved_left_usd": round(reserved, 6),
        }
    print(f"{'sweep':<8}{'state':<11}{'completed':>10}{'failed':>8}{'cancelled':>10}{'cost $':>10}")
    for sid, final in finals.items():
        c = final.counts
        print(
            f"{sid[:7]:<8}{final.state:<11}{c['completed']:>10}{c['failed']:>8}{c['cancelled']:>10}{final.cost:>10.2f}"
        )
    errors = Counter(str(r["error_message"])[:200] for r in rows if r["status"] != "completed")
    for message, n in errors.most_common(3):
        print(f"{n:>4} x {message}")
    print(
        f"{len(rows)} rows; worker SIGKILLs {kills}; service billed ${service_bill:.4f}, Parquet ${parquet:.4f}, ledger ${spent:.4f}; "
        f"{time.monotonic() - started:.0f} s"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
