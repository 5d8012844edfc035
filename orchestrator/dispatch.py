"""Publishing experiments to Celery: the only module of ``orchestrator/`` that talks to Celery."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from celery import Celery

from orchestrator.models import Experiment
from workers.app import RUN_TASK


class Dispatcher:
    """Sends experiment messages to the queue of their resource."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def publish(self, experiments: Iterable[Experiment]) -> int:
        sent = 0
        with self.app.producer_or_acquire() as producer:
            for exp in experiments:
                self.app.send_task(
                    RUN_TASK, queue=exp.resource, routing_key=exp.resource, producer=producer,
                    task_id=f"{exp.experiment_id}-{uuid.uuid4().hex[:8]}",
                    # keyword arguments so Flower shows sweep, experiment and project by name
                    kwargs={"sweep_id": exp.sweep_id, "index": exp.index, "experiment_id": exp.experiment_id,
                            "project": exp.project, "parameters": exp.parameters, "queue": exp.resource},
                )
                sent += 1
        return sent

    def ping(self, timeout: float = 1.0) -> list[str]:
        """Names of the workers that answer a ping (liveness check)."""
        replies = self.app.control.ping(timeout=timeout) or []
        return [name for reply in replies for name in reply]
