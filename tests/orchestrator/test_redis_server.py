"""The one redis-server launcher: what the embedded Redis, ``orchestrator redis``, the suite's and
the benchmarks' private servers rely on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis

from orchestrator.redis_server import RedisServer, free_port
from orchestrator.store.connection import ping
from tests.support.waiting import wait_until

FOREGROUND = """
import sys
from orchestrator.redis_server import RedisServer
RedisServer(sys.argv[1], port=int(sys.argv[2]), aof="everysec").exec_foreground()
"""


def test_a_throwaway_server_keeps_nothing_and_leaves_nothing_behind() -> None:
    server = RedisServer().start()
    try:
        client = redis.Redis.from_url(server.url)
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("bind")["bind"] == "127.0.0.1"
    finally:
        server.stop()
    assert server.process is None and not server.dir.exists(), "stopped, its temporary folder gone"
    assert not ping(server.url)


def test_a_killed_server_restarts_at_its_url_from_its_append_only_file(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, aof="always").start()
    try:
        url = server.url
        redis.Redis.from_url(url).set("recorded", "1")
        server.kill()
        assert not ping(url)
        server.start()
        assert server.url == url, "clients reconnect to the same port"
        assert redis.Redis.from_url(url).get("recorded") == b"1"
    finally:
        server.stop()
    assert tmp_path.exists(), "a folder of the caller's stays"


def test_orchestrator_redis_runs_in_the_foreground_durable_and_logging_to_the_terminal(
    tmp_path: Path,
) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", FOREGROUND, str(tmp_path / "data"), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"redis://127.0.0.1:{port}"
        wait_until(lambda: ping(url, timeout=1), timeout=30, what="the foreground redis-server")
        assert redis.Redis.from_url(url).config_get("appendonly") == {"appendonly": "yes"}
        assert proc.poll() is None, "exec: the Python process became the server"
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=20)
    assert "Ready to accept connections" in output, output
    assert any(path.name.startswith("appendonly") for path in (tmp_path / "data").iterdir())
