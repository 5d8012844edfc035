"""Commands on sweeps already submitted: ``status``, ``pause``, ``resume``, ``cancel``, and their
results: ``results`` (CSV or Parquet) and ``report`` (the analysis, from the results alone)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from core.errors import InputError
from orchestrator.cli.options import Command, broker_option, open_orchestrator, results_option, state_option
from orchestrator.render import console, follow, print_status


@click.command(cls=Command)
@click.argument("execution_id", required=False)
@broker_option
@results_option
@state_option
def status(
    execution_id: str | None, broker: str | None, results_dir: str | None, state_dir: Path | None
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
    orch = open_orchestrator(broker, results_dir, state_dir, start_workers=False)
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
        execution_id: str, broker: str | None, results_dir: str | None, state_dir: Path | None
    ) -> None:
        orch = open_orchestrator(broker, results_dir, state_dir, start_workers=False)
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
    return click.command(name=action, cls=Command)(command)


pause = _control("pause")
cancel = _control("cancel")


@click.command(cls=Command)
@click.argument("execution_id")
@broker_option
@results_option
@state_option
@click.option("--workers", type=int, default=None, help="Embedded worker concurrency.")
@click.option("--detach", is_flag=True, help="Only mark it running for a coordinator that serves it.")
def resume(
    execution_id: str,
    broker: str | None,
    results_dir: str | None,
    state_dir: Path | None,
    workers: int | None,
    detach: bool,
) -> None:
    """Resume a paused or interrupted sweep; completed experiments are never run again."""
    orch = open_orchestrator(broker, results_dir, state_dir, workers=workers, start_workers=not detach)
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


@click.command(cls=Command)
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
def results(execution_id: str, fmt: str, output: Path | None, results_dir: str | None) -> None:
    """Export a sweep's results as CSV or Parquet."""
    from core.exports import formula_safe_frame
    from orchestrator.api import load_results

    frame = load_results(execution_id, results_dir)  # InputError for a sweep the store lacks
    if frame.empty:
        raise InputError(
            f"sweep '{execution_id}' has no result rows yet",
            field="execution_id",
            fix="wait for its first results (`orchestrator status " + execution_id + "`)",
        )
    if fmt == "parquet":
        if output is None:
            raise InputError("--output is required for parquet", field="--output")
        frame.to_parquet(output, index=False)
    elif output is None:
        formula_safe_frame(frame).to_csv(sys.stdout, index=False)
    else:
        formula_safe_frame(frame).to_csv(output, index=False)
    if output is not None:
        console.print(f"wrote {len(frame)} rows to {output}")


@click.command(cls=Command)
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
    results_dir: str | None,
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
