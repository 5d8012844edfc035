"""Module-level app for the ``celery`` command line and Flower::

    ORCHESTRATOR_BROKER_URL=redis://host:6379/0 celery -A workers.celery_app flower

Built by the same factory from the same settings as every other process. The ``celery``
command has no embedded Redis to fall back on, so a missing broker URL (or a bad setting) ends
the command with a message and exit code 2, not a traceback.
"""

from __future__ import annotations

import sys

from core.errors import InputError
from core.settings import Settings, check_environment, load_settings
from workers.app import create_app


def _settings() -> Settings:
    check_environment(strict=False)  # a long-running service: warn about mistyped settings
    try:
        settings = load_settings()
    except InputError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None
    if settings.broker_url is None:
        sys.stderr.write(
            "error: `celery -A workers.celery_app` needs a broker: set "
            "ORCHESTRATOR_BROKER_URL=redis://host:6379/0 (or broker_url in the settings file). "
            "Or use `orchestrator worker|beat|flower --broker URL`.\n"
        )
        raise SystemExit(2)
    return settings


app = create_app(_settings())
