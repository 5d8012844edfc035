"""Shared fixtures: a real Redis, real worker processes, sweep files for test projects.

Tests that cross a process use the session's own private Redis (``tests/support/redis_db.py``):
a developer's Redis is never touched. A missing Redis is a failure, never a skip.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from orchestrator.embedded import worker_command
from tests.support.redis_db import OVERRIDE_ENV, SuiteRedis, require_redis, session_redis

ROOT = Path(__file__).resolve().parent.parent
#: benchmarks/regressions.py's table, when tests/test_benchmarks.py measured it this run
REGRESSION_TABLE = pytest.StashKey[str]()
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def _clean_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Forget the developer's ``ORCHESTRATOR_*`` variables and settings file for the session.

    A ``ORCHESTRATOR_BROKER_URL`` inherited from the shell would send embedded-mode tests (and
    the processes they start) to the developer's Redis.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("ORCHESTRATOR_") and n != OVERRIDE_ENV]:
            patch.delenv(name)
        patch.setenv("ORCHESTRATOR_SETTINGS_FILE", str(tmp_path_factory.mktemp("settings") / "none.yaml"))
        yield


@pytest.fixture(scope="session")
def suite_redis() -> Iterator[SuiteRedis]:
    """The session's own Redis, started on first use and stopped when the session ends."""
    yield from session_redis()


@pytest.fixture
def redis_url(suite_redis: SuiteRedis) -> Iterator[str]:
    """A database of the suite's Redis, empty at the start and end of the test."""
    client = require_redis(suite_redis.process_url)
    client.flushdb()
    yield suite_redis.process_url
    client.flushdb()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a temp folder so results/ and .orchestrator/ land there."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "counter").mkdir()
    monkeypatch.setenv("COUNTER_DIR", str(tmp_path / "counter"))
    return tmp_path


def child_env(workdir: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "ORCHESTRATOR_VISIBILITY_TIMEOUT": "8",
        "ORCHESTRATOR_LEASE_TTL": "2",
        "COUNTER_DIR": str(workdir / "counter"),
        "PYTHONUNBUFFERED": "1",
        # each test's own state folder (embedded Redis, project virtualenvs), whatever the session set
        "ORCHESTRATOR_STATE_DIR": str(workdir / ".orchestrator"),
    }
    env.update(extra)
    return env


def bell_shots_sweep(name: str, points: int, **early_stopping: Any) -> dict[str, Any]:
    """The bell example over ``points`` noise levels at 400 shots, with shots as a budget: a
    quarter of the shots first, the rest only for runs that may beat the incumbent."""
    return {
        "name": name,
        "projects": [
            {"name": "bell", "path": str(ROOT / "examples" / "projects" / "bell"), "entry": "bell:run"}
        ],
        "parameters": {"noise": {"start": 0.0, "stop": 0.3, "num": points}, "shots": [400]},
        "objectives": [{"metric": "p_correlated", "goal": "maximize"}],
        "seed": 5,
        "optimizer": {
            "startup_points": 4,
            "early_stopping": {
                "enabled": True,
                "low_fidelity_share": 0.25,
                "max_stopped_share": 0.5,
                **early_stopping,
            },
        },
    }


def sweep_meta(url: str, sweep_id: str) -> dict[str, str]:
    """The sweep's meta hash, or {} while Redis is down or loading (a test that kills it)."""
    try:
        client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
        return client.hgetall(f"orch:sweep:{sweep_id}:meta")
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
        return {}


def executions(workdir: Path) -> Counter[str]:
    """How many times each point really ran (the counter project's side effect)."""
    log = workdir / "counter" / "executions.log"
    return Counter(log.read_text().split()) if log.exists() else Counter()


def write_sweep(
    folder: Path, name: str = "count", points: int = 12, sleep: float = 0.0, **extra: object
) -> Path:
    sweep = {
        "name": name,
        "projects": [
            {"name": "counter", "path": str(FIXTURES / "projects" / "counter"), "entry": "counter:run"}
        ],
        "parameters": {"x": {"kind": "int", "start": 0, "stop": points - 1}, "sleep": [sleep]},
        "adaptive_sampling": False,
    }
    sweep.update(extra)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


class Worker:
    """A real ``orchestrator worker`` process."""

    def __init__(
        self,
        broker: str,
        workdir: Path,
        name: str,
        concurrency: int = 2,
        queues: str = "local_cpu,braket_sim,braket_qpu,control",
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        wrap: list[str] | None = None,
    ) -> None:
        self.name = f"{name}@{os.uname().nodename}"
        cmd = worker_command(queues.split(","), concurrency, self.name, broker=broker, loglevel="INFO")
        self.log = open(workdir / f"worker-{name}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*(wrap or []), *cmd],  # wrap: e.g. a mount namespace that hides folders (another "host")
            cwd=cwd,
            env=child_env(workdir, **(env or {})),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.broker = broker

    def wait_ready(self, timeout: float = 60) -> Worker:
        client = redis.Redis.from_url(self.broker)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if client.hexists("orch:workers", self.name):
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited: {Path(self.log.name).read_text()[-2000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"worker {self.name} not ready: {Path(self.log.name).read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def start_worker(redis_url: str, workdir: Path) -> Iterator:
    started: list[Worker] = []

    def start(name: str = "w1", concurrency: int = 2, **kw: Any) -> Worker:
        worker = Worker(redis_url, workdir, name, concurrency, **kw)
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()


def spawn_cli(*args: str, workdir: Path, **popen: Any) -> subprocess.Popen:
    """``orchestrator ARGS`` started in ``workdir`` with the test's environment (not waited for);
    its output is one text pipe unless ``popen`` says otherwise."""
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True, **popen}
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", *args], cwd=workdir, env=child_env(workdir), **popen
    )


def cli(*args: str, workdir: Path, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        cwd=workdir,
        env=child_env(workdir, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Print the performance regression table (never a failure: a reason to look)."""
    table = config.stash.get(REGRESSION_TABLE, None)
    if table:
        terminalreporter.section("performance regressions (benchmarks/regressions.py)")
        terminalreporter.write_line(table)
