"""Commands that take a sweep file or a project: ``run``, ``submit``, ``estimate``, ``check`` and
``physics-check`` (the example projects against known physics).

The first four validate and price a sweep file the same way (``_estimate``), so bad input exits 2
before anything starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from core.errors import InputError, OrchestratorError
from orchestrator.cli.options import Command, broker_option, open_orchestrator, results_option, state_option
from orchestrator.render import console, follow, print_plan

confirm_option = click.option(
    "--yes", "-y", is_flag=True, help="Do not ask before a sweep estimated above confirm_above USD."
)


@click.command(cls=Command)
@click.argument("sweep_file", type=click.Path(path_type=Path))
@broker_option
@results_option
@state_option
@click.option("--workers", type=int, default=None, help="Embedded worker concurrency (default: CPU count).")
@click.option("--dry-run", is_flag=True, help="Validate and show the plan and cost estimate; run nothing.")
@confirm_option
def run(
    sweep_file: Path,
    broker: str | None,
    results_dir: str | None,
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
    if settings.broker_url is None:  # embedded: Redis (and on a first run the workers) boot while we import
        from orchestrator.embedded import launch_early

        concurrency = workers or settings.worker_concurrency or os.cpu_count() or 2
        early["server"], early["local_workers"] = launch_early(validated.config, settings, concurrency)
    else:  # a shared deployment: Redis answers, and the results store takes a write, before
        from core.results import ResultStore  # anything is written to either
        from orchestrator.api import check_broker

        check_broker(settings.broker_url)
        ResultStore(settings.results_dir).probe()
    # otherwise embedded workers start once the coordinator finds an experiment to run (see `follow`)
    orch = open_orchestrator(broker, results_dir, state_dir, workers=workers, start_workers=False, **early)
    orch.coordinator.reports.inline = True  # this process ends with its sweep's report: draw it here
    try:
        execution = orch.submit(validated)
        follow(orch, execution.execution_id, resumed=execution.resumed)
    finally:
        orch.close()


@click.command(cls=Command)
@click.argument("sweep_file", type=click.Path(path_type=Path))
@broker_option
@results_option
@state_option
@confirm_option
def submit(
    sweep_file: Path, broker: str | None, results_dir: str | None, state_dir: Path | None, yes: bool
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
    from core.results import ResultStore
    from orchestrator.scheduler import Scheduler

    store = ResultStore(settings.results_dir)
    store.probe()  # before a coordinator is started or anything reaches Redis
    if settings.broker_url is None or not check_broker(url).registry.coordinator_alive():
        _spawn_coordinator(settings, broker)
    state = check_broker(url)
    execution = Scheduler(state, store, settings.model_copy(update={"broker_url": url})).schedule_sweep(
        config, validated.code
    )
    console.print(execution.execution_id)


def _spawn_coordinator(settings: Any, broker: str | None) -> None:
    from orchestrator.api import check_broker
    from orchestrator.embedded import EmbeddedRedis

    logs = Path(settings.state_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "orchestrator.cli", "coordinator", "--until-idle", "30"]
    cmd += ["--results-dir", str(settings.results_dir), "--state-dir", str(settings.state_dir)]
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


@click.command(cls=Command)
@click.argument("sweep_file", type=click.Path(path_type=Path))
def estimate(sweep_file: Path) -> None:
    """Validate SWEEP_FILE's devices and print its cost estimate, itemized per device."""
    _estimate(sweep_file, None, show=True)


@click.command(cls=Command)
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


@click.command(name="physics-check", cls=Command)
@click.option("--json", "as_json", is_flag=True, help='Print {"checks": [...]} as JSON instead of a table.')
def physics_check(as_json: bool) -> None:
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


def _estimate(sweep_file: Path, broker: str | None, *, show: bool) -> Any:
    """Validate the sweep file (:mod:`orchestrator.validation`) and, with ``show``, print its cost
    estimate; returns the validated sweep (its ``config`` and ``estimate``)."""
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
            console.print(note if note.startswith("suggestion: ") else f"note: {note}", highlight=False)
        print_device_choices(result)
        print_ladder(result)
    return validated


def print_ladder(result: Any) -> None:
    """A fidelity ladder's bound per rung: every point on the first, ``max_share`` on each higher."""
    if not result.rungs:
        return
    table = Table(
        "project", "rung", "device", "shots", "tasks (at most)", "USD (at most)", title="fidelity ladder"
    )
    for row in result.rungs:
        table.add_row(
            row.project,
            str(row.rung),
            row.device.rsplit("/", 1)[-1],  # sv1, Forte-1: the per-device table above has the ARN
            "the point's" if row.shots is None else str(row.shots),
            str(row.tasks),
            f"{row.cost:.4f}",
        )
    console.print(table)


def print_device_choices(result: Any) -> None:
    """``device: auto``'s choice per circuit shape (and why the others lost), and what the paid
    projects' points would cost on the simulators."""
    for choice in result.choices:
        console.print(
            f"device: auto, {choice['project']}: {choice['points']} points of {choice['shape']} -> "
            f"{choice['device']} (${choice['cost']:.4f} per task)",
            highlight=False,
        )
        for device, why in sorted(choice["candidates"].items()):
            console.print(f"    {device}: {why}", highlight=False, markup=False)
    if result.alternatives:
        table = Table("project", "device", "tasks", "USD", "can run it", title="simulator alternatives")
        for alt in result.alternatives:
            table.add_row(
                alt.project,
                alt.label or alt.device,
                str(alt.tasks),
                f"{alt.cost:.4f}" if alt.runs else "-",
                "yes" if alt.runs else f"no: {alt.why_not}",
            )
        console.print(table)


def _confirm(estimate: Any, broker: str | None, yes: bool) -> None:
    from core.settings import load_settings

    threshold = load_settings(broker_url=broker).confirm_above
    for note in estimate.notes:  # a cheaper simulator's suggestion, on stderr: `submit` prints only the id
        if note.startswith("suggestion: "):
            click.echo(note, err=True)
    for row in estimate.rungs:  # what the total is made of, on a fidelity ladder
        click.echo(
            f"ladder {row.project}, rung {row.rung} ({row.device}): at most {row.tasks} tasks, ${row.cost:.2f}",
            err=True,
        )
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
