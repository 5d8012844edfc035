"""Flower, started for real against the same broker, lists our workers and experiment tasks."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import requests

from orchestrator import Orchestrator
from tests.conftest import spawn_cli, write_sweep


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_flower_lists_workers_and_readable_experiment_tasks(
    workdir: Path, redis_url: str, start_worker
) -> None:
    worker = start_worker("flowered", concurrency=1)
    port = _free_port()
    flower = spawn_cli(
        "flower",
        "--broker",
        redis_url,
        "--port",
        str(port),
        "--basic-auth",
        "admin:secret",
        workdir=workdir,
        stdout=subprocess.DEVNULL,
    )
    auth = ("admin", "secret")
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/api/workers", auth=auth, timeout=5).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        assert requests.get(f"{base}/api/workers", timeout=5).status_code == 401, "API needs auth"

        with Orchestrator(redis_url) as orch:
            sid = orch.submit(write_sweep(workdir, points=4, sleep=0.2)).execution_id
            orch.wait(sid, timeout=60)

        tasks: dict = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(tasks) < 4:
            tasks = requests.get(f"{base}/api/tasks", auth=auth, timeout=5).json()
            time.sleep(0.5)
        workers = requests.get(f"{base}/api/workers", auth=auth, params={"refresh": "1"}, timeout=30).json()
        assert worker.name in workers
        runs = [t for t in tasks.values() if t["name"] == "orchestrator.run_experiment"]
        assert len(runs) == 4
        for task in runs:
            assert sid in task["kwargs"] and "'project': 'counter'" in task["kwargs"]
            assert "'experiment_id':" in task["kwargs"]
            assert task["state"] == "SUCCESS"
    finally:
        flower.terminate()
        flower.wait(timeout=20)
