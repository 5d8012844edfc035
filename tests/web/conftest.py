"""A real ``orchestrator serve`` process on the suite's Redis, and sweep bodies for it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.conftest import FIXTURES, child_env

TOKEN = "test-token-6f1c0d9e-not-a-secret-anywhere-else"
ROOTS = FIXTURES / "projects"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sweep_body(
    name: str = "api", points: int = 12, sleep: float = 0.0, fail_at: float | None = None, **extra: Any
) -> str:
    """A sweep file's YAML, its project given relative to the project roots."""
    parameters: dict[str, Any] = {"x": {"kind": "int", "start": 0, "stop": points - 1}, "sleep": [sleep]}
    if fail_at is not None:
        parameters["fail_at"] = [fail_at]
    sweep = {
        "name": name,
        "projects": [{"name": "counter", "path": "counter", "entry": "counter:run"}],
        "parameters": parameters,
        "adaptive_sampling": False,
        **extra,
    }
    return yaml.safe_dump(sweep, sort_keys=False)


class Server:
    """A real ``orchestrator serve`` process."""

    def __init__(self, workdir: Path, args: list[str], env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"serve-{self.port}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "serve", "--port", str(self.port), *args],
            cwd=workdir,
            env=child_env(workdir, **env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited: {self.output()[-3000:]}")
            try:
                if requests.get(f"{self.url}/api/v1/health", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"serve not ready: {self.output()[-3000:]}")

    def api(self, method: str, path: str, token: str | None = TOKEN, **kw: Any) -> requests.Response:
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=60, **kw)

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def dry_run(workdir: Path, redis_url: str, body: str) -> requests.Response:
    """``POST /sweeps?dry_run=true`` of ``body`` to a ``serve`` of its own on ``redis_url``, stopped
    before this returns (so whatever it wrote is in Redis by then)."""
    server = Server(
        workdir,
        ["--broker", redis_url],
        {"ORCHESTRATOR_API_TOKEN": TOKEN, "ORCHESTRATOR_PROJECT_ROOTS": str(ROOTS)},
    )
    try:
        return server.wait_ready().api("POST", "/sweeps", params={"dry_run": "true"}, data=body)
    finally:
        server.stop()


@pytest.fixture
def start_server(workdir: Path) -> Iterator:
    started: list[Server] = []

    def start(*args: str, **env: str) -> Server:
        env = {"ORCHESTRATOR_API_TOKEN": TOKEN, "ORCHESTRATOR_PROJECT_ROOTS": str(ROOTS), **env}
        server = Server(workdir, list(args), env)
        started.append(server)
        return server.wait_ready()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(start_server: Any, redis_url: str) -> Server:
    """``serve`` over the suite's Redis, coordinating; workers come from ``start_worker``."""
    return start_server("--broker", redis_url, "--coordinate")


def wait_done(server: Server, sweep_id: str, timeout: float = 120) -> dict[str, Any]:
    """The sweep's status once it is done (completed, cancelled or failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = server.api("GET", f"/sweeps/{sweep_id}").json()
        if status["done"]:
            return status
        time.sleep(0.3)
    raise TimeoutError(f"{sweep_id} not done: {status['state']} {status['counts']}")


def analytic_body(name: str, n: int, max_experiments: int, **parameters: Any) -> str:
    """An adaptive sweep of the analytic project (optimum near x = 0.7, y = 0.2) over ``n`` Sobol
    points of (x, y), stopped after ``max_experiments``: a body for ``POST /sweeps``."""
    sobol = {"sample": "sobol", "low": 0.0, "high": 1.0, "n": n}
    return yaml.safe_dump(
        {
            "name": name,
            "projects": [{"name": "f", "path": "analytic", "entry": "analytic:run"}],
            "parameters": {"x": sobol, "y": sobol, **parameters},
            "objectives": [{"metric": "score", "goal": "maximize"}],
            "adaptive_sampling": True,
            "max_experiments": max_experiments,
            "optimizer": {"startup_points": 6},
            "seed": 3,
        }
    )
