"""Publishing experiments to Celery: the only module of ``orchestrator/`` that talks to Celery."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from celery import Celery

from orchestrator.models import Experiment
from workers.app import BATCH_TASK, RUN_TASK

REPR_MAX = 1024  # Celery's own cap on argsrepr/kwargsrepr


def _batch(producer: Any) -> contextlib.AbstractContextManager[Any]:
    """kombu's publish batch (one pipelined round trip for many messages) where it has one (>= 5.7)."""
    batch = getattr(producer, "batch", None)
    return batch() if batch is not None else contextlib.nullcontext()


class Dispatcher:
    """Sends experiment messages to the queue of their resource."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def restore(self, tags: list[str]) -> Counter[str]:
        """Put the unacked messages ``tags`` (of a lost worker) back at the head of their queues.

        kombu's own restore waits for the visibility timeout. Its ``restore_by_tag`` is a WATCHed
        transaction, so a restore racing another (or kombu's) moves each message once. Returns
        how many were still unacked, by sweep ("" for messages of no sweep).
        """
        restored: Counter[str] = Counter()
        if not tags:
            return restored
        with self.app.connection_for_write() as conn:
            channel = conn.default_channel
            for tag, raw in zip(tags, channel.client.hmget(channel.unacked_key, tags), strict=True):
                if raw is not None:
                    channel.qos.restore_by_tag(tag)
                    restored[_sweep_of(raw)] += 1
        return restored

    def publish(self, experiments: Iterable[Experiment], batch_size: int = 1) -> int:
        """Send the experiments, all of them in one Redis round trip where kombu can batch.

        With ``batch_size`` > 1, consecutive experiments of one sweep and queue travel together
        in one ``run_batch`` message (up to ``batch_size`` each); low-shot runs always go alone.
        Returns the number of messages. A failure may leave some of them sent: the caller puts
        them all back to pending, and the duplicates that follow are harmless (the worker's
        terminal check and lease).
        """
        sent = 0
        with self.app.producer_or_acquire() as producer, _batch(producer):
            for group in _groups(experiments, batch_size):
                first = group[0]
                if len(group) == 1:
                    # keyword arguments so Flower shows sweep, experiment and project by name
                    name, kwargs = (
                        RUN_TASK,
                        {"sweep_id": first.sweep_id, **_fields(first), "queue": first.resource},
                    )
                    task_id = f"{first.experiment_id}-{uuid.uuid4().hex[:8]}"
                    shown = kwargs
                else:
                    name, kwargs = (
                        BATCH_TASK,
                        {
                            "sweep_id": first.sweep_id,
                            "queue": first.resource,
                            "experiments": [_fields(e) for e in group],
                        },
                    )
                    task_id = f"batch-{first.experiment_id}-{uuid.uuid4().hex[:8]}"
                    shown = {
                        "sweep_id": first.sweep_id,
                        "queue": first.resource,
                        "experiment_ids": [e.experiment_id for e in group],
                        "projects": sorted({e.project for e in group}),
                    }
                self.app.send_task(
                    name,
                    queue=first.resource,
                    routing_key=first.resource,
                    producer=producer,
                    task_id=task_id,
                    kwargs=kwargs,
                    # Celery's saferepr of the arguments (for Flower) cost more than the rest of
                    # the message; these plain values need no safety net, only the same cap.
                    argsrepr="()",
                    kwargsrepr=repr(shown)[:REPR_MAX],
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


def _fields(exp: Experiment) -> dict[str, Any]:
    """What a worker needs of one experiment (beside its sweep and queue)."""
    out: dict[str, Any] = {
        "index": exp.index,
        "experiment_id": exp.experiment_id,
        "project": exp.project,
        "parameters": exp.parameters,
    }
    if exp.added:
        out["added"] = True
    if exp.shot_fraction:
        out["shot_fraction"] = exp.shot_fraction
    return out


def _groups(experiments: Iterable[Experiment], size: int) -> Iterator[list[Experiment]]:
    """Consecutive experiments of one sweep and queue, ``size`` at most; low-shot runs alone."""
    group: list[Experiment] = []
    for exp in experiments:
        if group and (
            len(group) >= size
            or exp.shot_fraction
            or group[0].shot_fraction
            or (exp.sweep_id, exp.resource) != (group[0].sweep_id, group[0].resource)
        ):
            yield group
            group = []
        group.append(exp)
    if group:
        yield group


def _sweep_of(unacked: bytes | str) -> str:
    """The sweep of a message in kombu's unacked hash (``[payload, exchange, routing_key]``)."""
    try:
        payload = json.loads(unacked)[0]
        body = payload["body"]
        if payload["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        return str(json.loads(body)[1].get("sweep_id", ""))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return ""
