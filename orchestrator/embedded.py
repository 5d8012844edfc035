"""The embedded default: a private real Redis and local worker processes, started and stopped
by the process that needs them.

Redis (a :class:`~orchestrator.redis_server.RedisServer`) listens on a unix socket in the state
folder, with an append-only file there: a killed coordinator (or Redis) restarts from it
without losing a recorded result. Children get ``PR_SET_PDEATHSIG`` so that a SIGKILLed parent
never leaves orphans behind.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Self

from orchestrator.redis_server import RedisServer, die_with_parent
from orchestrator.store.connection import ping

#: every queue: embedded workers serve whatever the sweep needs
QUEUES = ["local_cpu", "braket_sim", "braket_qpu", "control"]


class EmbeddedRedis(RedisServer):
    """The embedded Redis: a unix socket and an append-only file under ``state_dir/redis``.

    Another command of the same state folder may have started it already (``orchestrator run``
    while ``orchestrator serve`` runs): :meth:`launch` then shares that server, and :meth:`stop`
    leaves it to the process that started it.
    """

    def __init__(self, state_dir: str | Path) -> None:
        folder = Path(state_dir).resolve() / "redis"
        socket = folder / "redis.sock"
        if len(str(socket)) > 100:  # unix socket paths are limited to ~108 bytes
            digest = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
            socket = Path(tempfile.gettempdir()) / f"orchestrator-{digest}.sock"
        super().__init__(folder, socket=socket, aof="everysec")

    def launch(self) -> Self:
        if self.socket is not None and self.socket.exists() and ping(self.url, timeout=1):
            return self  # a server of ours is up (another CLI call): share it
        return super().launch()


def worker_command(
    queues: list[str],
    concurrency: int,
    hostname: str,
    *,
    broker: str | None = None,
    loglevel: str = "WARNING",
    preload: list[str] | None = None,
) -> list[str]:
    """The ``orchestrator worker`` command line, for every caller that starts workers (the
    embedded default, the tests, the benchmarks); ``broker=None`` leaves it to the environment."""
    cmd = [sys.executable, "-m", "orchestrator.cli", "worker", "--queues", ",".join(queues)]
    cmd += ["--concurrency", str(concurrency), "--hostname", hostname, "--loglevel", loglevel]
    cmd += ["--broker", broker] if broker else []
    return cmd + (["--preload", ",".join(preload)] if preload else [])


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
        log = open(self.log_dir / f"worker-{os.getpid()}.log", "ab")  # noqa: SIM115 - owned by the child
        cmd = worker_command(
            self.queues, self.concurrency, f"embedded-{os.getpid()}@%h", preload=self.preload
        )
        self.processes.append(
            subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
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
    # results in an object store are not listed here (a listing would import pyarrow before Redis
    # starts): the workers may then start for a sweep whose results are all reused
    local = not str(settings.results_dir).startswith("s3:")
    fresh = not server.dir.exists() and not (local and any(Path(settings.results_dir).glob("sweep=*")))
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
