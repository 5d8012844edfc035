"""The ``orchestrator`` command line. Exit codes: 0 done, 1 the run failed, 2 bad input.

One module per group of commands: :mod:`~orchestrator.cli.sweeps` (run, submit, estimate,
check, physics-check), :mod:`~orchestrator.cli.control` (status, pause, resume, cancel, results,
report) and :mod:`~orchestrator.cli.services` (worker, coordinator, beat, flower, redis, serve).
Each command imports what it needs when it runs, so that ``orchestrator --help`` starts at once.
"""

from __future__ import annotations

import copy
import logging
import sys
from typing import Any

import click
from rich.console import Console

from core.errors import InputError, OrchestratorError
from orchestrator.cli import control, services, sweeps

err_console = Console(stderr=True)


class _Cli(click.Group):
    """Turns our errors into clean messages and exit codes instead of tracebacks."""

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


for _command in (
    sweeps.run,
    sweeps.submit,
    sweeps.estimate,
    sweeps.check,
    sweeps.physics_check,
    control.status,
    control.pause,
    control.resume,
    control.cancel,
    control.results,
    control.report,
    services.worker,
    services.coordinator,
    services.beat,
    services.flower,
    services.redis_server,
    services.serve,
):
    main.add_command(_command)
# `validate` was the old name of physics-check; "validation" now means input validation only
main.add_command(copy.copy(sweeps.physics_check), name="validate")
main.commands["validate"].hidden = True

__all__ = ["main"]
