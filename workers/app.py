"""The worker's Celery app: the one configured by :func:`orchestrator.dispatch.celery_app`, with
the tasks registered on it. No hidden global app: every process builds its own from ``Settings``.
"""

from __future__ import annotations

from celery import Celery

from core.protocol import QUEUES
from core.settings import Settings, load_settings
from orchestrator.dispatch import celery_app
from workers import tasks

__all__ = ["QUEUES", "create_app"]


def create_app(settings: Settings | None = None, *, broker_url: str | None = None) -> Celery:
    """Build the Celery app for ``settings`` (or ``broker_url``) and register the tasks on it."""
    settings = settings or load_settings()
    app = celery_app(settings, broker_url=broker_url)
    tasks.register(app, settings)
    return app
