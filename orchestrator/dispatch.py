"""Publishing experiments to Celery: the only module of ``orchestrator/`` that talks to Celery."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from typing import Any

from celery import Celery

from orchestrator.models import Experiment
from workers.app import RUN_TASK

REPR_MAX = 1024  # Celery's own cap on argsrepr/kwargsrepr


def _batch(producer: Any) -> contextlib.AbstractContextManager[Any]:
    """kombu's publish batch (one pipelined round trip for many messages) where it has one (>= 5.7)."""
    batch = getattr(producer, "batch", None)
    return batch() if batch is not None else contextlib.nullcontext()


class Dispatcher:
    """Sends experiment messages to the queue of their resource."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def publish(self, experiments: Iterable[Experiment]) -> int:
        """Send one message per experiment; all of them in one Redis round trip where kombu can batch.

        A failure may leave some of them sent: the caller puts them all back to pending, and
        the duplicates that follow are harmless (the worker's terminal check and lease).
        """
        sent = 0
        with self.app.producer_or_acquire() as producer, _batch(producer):
            for exp in experiments:
                # keyword arguments so Flower shows sweep, experiment and project by name
                kwargs = {"sweep_id": exp.sweep_id, "index": exp.index, "experiment_id": exp.experiment_id,
                          "project": exp.project, "parameters": exp.parameters, "queue": exp.resource}
                if exp.added:
                    kwargs["added"] = True
                if exp.shot_fraction:
                    kwargs["shot_fraction"] = exp.shot_fraction
                self.app.send_task(
                    RUN_TASK, queue=exp.resource, routing_key=exp.resource, producer=producer,
                    task_id=f"{exp.experiment_id}-{uuid.uuid4().hex[:8]}", kwargs=kwargs,
                    # Celery's saferepr of the arguments (for Flower) cost more than the rest of
                    # the message; these plain values need no safety net, only the same cap.
                    argsrepr="()", kwargsrepr=repr(kwargs)[:REPR_MAX],
                    # Celery sends to a direct queue through the default exchange (a plain LPUSH
                    # on Redis); the workers declare their queues, so no declaration per message.
                    declare=[],
                )
                sent += 1
        return sent

    def ping(self, timeout: float = 1.0) -> list[str]:
        """Names of the workers that answer a ping (liveness check)."""
        replies = self.app.control.ping(timeout=timeout) or []
        return [name for reply in replies for name in reply]
