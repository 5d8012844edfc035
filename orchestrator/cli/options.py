"""What the commands share: the broker, results and state options, the command class that checks
the environment, and the :class:`~orchestrator.api.Orchestrator` a command opens on them.

Cheap to import (click only): every ``orchestrator`` call loads it, whatever the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

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
    type=str,
    default=None,
    help="Where results live: a folder or s3://bucket/prefix (default: ./results).",
)
state_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Embedded Redis, logs and virtualenvs (default: ./.orchestrator).",
)


# Long-running services only warn about an unknown ORCHESTRATOR_* variable; the rest refuse it.
SERVICES = frozenset({"worker", "coordinator", "beat", "flower", "redis", "serve"})


class Command(click.Command):
    """Checks the environment for mistyped settings once the arguments are parsed."""

    def invoke(self, ctx: click.Context) -> Any:
        from core.settings import check_environment

        check_environment(strict=self.name not in SERVICES)
        return super().invoke(ctx)


def open_orchestrator(broker: str | None, results_dir: str | None, state_dir: Path | None, **kw: Any) -> Any:
    """The :class:`~orchestrator.api.Orchestrator` of a command; it never coordinates on its own.

    Args:
        broker: the ``--broker`` URL (None: the embedded Redis of ``state_dir``).
        results_dir: the ``--results-dir`` option.
        state_dir: the ``--state-dir`` option.
        **kw: passed on to :class:`~orchestrator.api.Orchestrator` (workers, start_workers, ...).
    """
    from orchestrator.api import Orchestrator

    return Orchestrator(broker, results_dir=results_dir, state_dir=state_dir, coordinate=False, **kw)
