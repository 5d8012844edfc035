"""Module-level app for the ``celery`` command line and Flower::

    ORCHESTRATOR_BROKER_URL=redis://host:6379/0 celery -A workers.celery_app flower

Built by the same factory from the same settings as every other process.
"""

from __future__ import annotations

from workers.app import create_app

app = create_app()
