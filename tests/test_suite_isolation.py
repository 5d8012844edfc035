"""The suite never touches a Redis it did not start, and leaves no Redis running.

Each test runs an inner pytest session (the real fixtures of ``tests/conftest.py``) next to a
"developer's Redis" holding data, which the inner session's environment points at.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from orchestrator.redis_server import RedisServer
from tests.conftest import ROOT

INNER_TEST = """
import json, os, time
from pathlib import Path
import redis
from tests.conftest import child_env
from tests.support.redis_db import test_redis  # noqa: F401

def test_inner(redis_url, test_redis, tmp_path):
    client = redis.Redis.from_url(redis_url)
    client.set("written-by-the-suite", "1")
    test_redis.client.set(test_redis.prefix + "k", "1")
    report = {
        "url": redis_url,
        "keyed_url": test_redis.url,
        "server_pid": client.info()["process_id"],
        "server_dir": client.config_get("dir")["dir"],
        "broker_in_env": os.environ.get("ORCHESTRATOR_BROKER_URL"),
        "broker_in_child_env": child_env(tmp_path).get("ORCHESTRATOR_BROKER_URL"),
    }
    tmp = Path(os.environ["INNER_REPORT"] + ".tmp")
    tmp.write_text(json.dumps(report))
    os.replace(tmp, os.environ["INNER_REPORT"])
    time.sleep(float(os.environ.get("INNER_LINGER", "0")))
"""


@pytest.fixture
def developer_redis() -> Iterator[str]:
    """Stands for the Redis a developer keeps data in (its URL is what the shell exports)."""
    server = RedisServer().start()
    for db in (0, 9, 15):
        redis.Redis.from_url(f"{server.url}/{db}").set("precious", "data")
    yield server.url
    server.stop()


def _inner(tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TEST))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_inner.py"),
        ],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(ROOT), "INNER_REPORT": str(tmp_path / "report.json"), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _untouched(url: str) -> None:
    for db in (0, 9, 15):
        client = redis.Redis.from_url(f"{url}/{db}")
        assert client.keys() == [b"precious"], f"db {db} of the developer's Redis was changed"


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_suite_uses_and_stops_its_own_redis(tmp_path: Path, developer_redis: str) -> None:
    inner = _inner(tmp_path, ORCHESTRATOR_BROKER_URL=f"{developer_redis}/0")
    output, _ = inner.communicate(timeout=120)
    assert inner.returncode == 0, output
    report = json.loads((tmp_path / "report.json").read_text())
    assert not report["url"].startswith(developer_redis + "/")
    assert not report["keyed_url"].startswith(developer_redis + "/")
    assert report["broker_in_env"] is None and report["broker_in_child_env"] is None
    _untouched(developer_redis)
    assert _gone(report["server_pid"]), "the suite's Redis outlived the session"


def test_killed_suite_leaves_no_redis(tmp_path: Path, developer_redis: str) -> None:
    inner = _inner(tmp_path, INNER_LINGER="60")
    report_file = tmp_path / "report.json"
    deadline = time.monotonic() + 60
    while not report_file.exists() and time.monotonic() < deadline and inner.poll() is None:
        time.sleep(0.05)
    report = json.loads(report_file.read_text())
    inner.send_signal(signal.SIGKILL)
    inner.communicate(timeout=30)
    assert _gone(report["server_pid"]), "a SIGKILLed session left its Redis running"
    shutil.rmtree(report["server_dir"])  # only its log: the session had no chance to remove it
    _untouched(developer_redis)


def test_override_must_name_an_empty_database(tmp_path: Path, developer_redis: str) -> None:
    inner = _inner(tmp_path, ORCHESTRATOR_TEST_REDIS_URL=f"{developer_redis}/9")
    output, _ = inner.communicate(timeout=120)
    assert inner.returncode != 0
    assert "holds 1 keys" in output and "empty" in output, output
    _untouched(developer_redis)
