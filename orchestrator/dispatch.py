"""Celery for the coordinator: the app factory and publishing. The only module of ``orchestrator/``
that talks to Celery.

The app is configured here once (serializer, queues, transport options) for every process:
workers build theirs with :func:`workers.app.create_app`, which adds the tasks to this one.
Messages are sent by task name (:class:`~core.protocol.Task`), built from the models of
:mod:`core.protocol` and read back into them (:meth:`Dispatcher.in_flight`), so nothing here
imports ``workers``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from celery import Celery
from kombu import Exchange
from kombu import Queue as KombuQueue
from kombu.exceptions import KombuError, OperationalError
from kombu.serialization import prepare_accept_content
from kombu.utils.json import loads

from core.errors import ConfigurationError
from core.models import Experiment
from core.protocol import (
    QUEUES,
    RESOURCE_QUEUES,
    BatchMessage,
    Message,
    PollMessage,
    Queue,
    RunMessage,
    Task,
    message_of,
)
from core.settings import Settings, load_settings

#: what publishing raises while the broker is unreachable
PUBLISH_ERRORS: tuple[type[Exception], ...] = (OperationalError,)
REPR_MAX = 1024  # Celery's own cap on argsrepr/kwargsrepr


def _batch(producer: Any) -> contextlib.AbstractContextManager[Any]:
    """kombu's publish batch (one pipelined round trip for many messages) where it has one (>= 5.7)."""
    batch = getattr(producer, "batch", None)
    return batch() if batch is not None else contextlib.nullcontext()


def celery_app(settings: Settings | None = None, *, broker_url: str | None = None) -> Celery:
    """The Celery app every process uses, configured from ``settings`` (or ``broker_url``).

    It has no tasks: the coordinator sends by name, and :func:`workers.app.create_app` registers
    the tasks on an app made here, so broker URL and visibility timeout are one value everywhere.
    """
    settings = settings or load_settings()
    url = broker_url or settings.broker_url
    if not url:
        raise ConfigurationError(
            "no broker URL: set ORCHESTRATOR_BROKER_URL (or pass --broker redis://host:6379/0); "
            "`orchestrator run` without one starts an embedded Redis"
        )
    app = Celery("orchestrator", broker=url, set_as_current=False)
    exchange = Exchange("orchestrator", type="direct")
    app.conf.update(
        # JSON only: a serializer that rebuilds Python objects would let anyone who can write to
        # the shared Redis run code on every worker.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        task_ignore_result=True,  # results travel through our own durable stream
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        # kombu looks for abandoned (unacked, timed-out) messages only every interval x throttle
        # seconds, 100 s by default; scan every few seconds so a killed worker's work comes back soon.
        # Each scan holds a Redis mutex that expires after 300 s by default: a worker killed
        # inside a scan (a few ms, but every few seconds) blocked every restore for 5 minutes.
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": max(1, min(10, settings.visibility_timeout // 10)),
            "unacked_restore_throttle": 1,
            "unacked_mutex_expire": 10,
        },
        broker_connection_retry_on_startup=True,
        task_queues=[KombuQueue(name, exchange, routing_key=name) for name in QUEUES],
        task_default_queue=Queue.LOCAL_CPU.value,
        task_default_exchange="orchestrator",
        task_default_routing_key=Queue.LOCAL_CPU.value,
        task_routes={Task.OPTIMIZE.value: {"queue": Queue.CONTROL.value, "routing_key": Queue.CONTROL.value}},
        # Workers send task events (received/started/succeeded), which is all Flower needs to
        # list every experiment task with its name and arguments. No "task-sent" event from the
        # coordinator: it was one more Redis PUBLISH per message and measured at about 40% of
        # the coordinator's publishing cost (benchmarks/overhead.py), for a state ("sent") that
        # the bounded window keeps short-lived; Flower's broker view still shows queue lengths.
        task_send_sent_event=False,
        worker_send_task_events=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "optimize-adaptive-sweeps": {
                "task": Task.OPTIMIZE.value,
                "schedule": settings.optimizer_interval,
                "options": {"expires": settings.optimizer_interval * 2},
            },
        },
    )
    app.conf.orchestrator_settings = settings.model_dump(mode="json")
    return app


@dataclass(frozen=True, slots=True)
class InFlight:
    """The experiment messages the broker holds, queued or delivered and not yet acked."""

    experiments: frozenset[tuple[str, int]]  # (sweep id, index) of every run and batch member
    polls: frozenset[str]  # the quantum-task ARNs of poll messages


class Dispatcher:
    """Sends experiment messages to the queue of their resource."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    @cached_property
    def _accept(self) -> set[str]:
        """The content types the app accepts (JSON only), as kombu's message class checks them."""
        return prepare_accept_content(self.app.conf.accept_content)

    def send(self, task: Task, kwargs: dict[str, Any], queue: str, countdown: float | None = None) -> None:
        """Send one message of ``task`` (a worker re-sending a run or scheduling a poll)."""
        self.app.send_task(
            task.value, kwargs=kwargs, queue=queue, routing_key=queue, countdown=countdown or None
        )

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
                    message = self._decode(channel, raw, unacked=True)
                    restored[(message.sweep_id if message else None) or ""] += 1
        return restored

    def in_flight(self) -> InFlight:
        """Every experiment message the broker holds: in a resource queue, or delivered and unacked.

        kombu's Redis transport pops a message (BRPOP) and notes it unacked in a second round
        trip: a worker killed between the two loses the message, and nothing would ever send it
        again. The coordinator compares this with what waits for a message (its reconcile step).
        One MULTI reads the queues and the unacked hash together, so a message is never missed
        while a restore moves it from one to the other.
        """
        with self.app.connection_for_write() as conn:
            channel = conn.default_channel
            pipe = channel.client.pipeline(transaction=True)
            for queue in RESOURCE_QUEUES:
                pipe.lrange(queue, 0, -1)
            pipe.hvals(channel.unacked_key)
            *queued, unacked = pipe.execute()
            messages = [self._decode(channel, raw) for raws in queued for raw in raws]
            messages += [self._decode(channel, raw, unacked=True) for raw in unacked]
        experiments: set[tuple[str, int]] = set()
        polls: set[str] = set()
        for message in messages:
            if isinstance(message, PollMessage):
                polls.add(message.task_arn)
            elif isinstance(message, RunMessage):
                experiments.add((message.sweep_id, message.experiment.index))
            elif isinstance(message, BatchMessage):
                experiments.update((message.sweep_id, e.index) for e in message.experiments)
        return InFlight(frozenset(experiments), frozenset(polls))

    def _decode(self, channel: Any, raw: bytes | str, *, unacked: bool = False) -> Message | None:
        """The protocol message of a kombu message as Redis holds it: its payload in a queue,
        ``[payload, exchange, routing_key]`` in the unacked hash. kombu's own message class
        decodes the envelope (body encoding, compression, content type: JSON only, as the app
        accepts); :func:`core.protocol.message_of` makes the model. None if it is not one of ours."""
        try:
            payload = loads(raw)
            if unacked:
                payload, _exchange, _routing_key = payload
            envelope = channel.Message(payload, channel=channel, accept=self._accept)
            _args, kwargs, _embed = envelope.decode()  # Celery's message protocol 2
            return message_of(str(envelope.headers.get("task", "")), kwargs)
        except (KombuError, ValueError, KeyError, IndexError, TypeError, AttributeError):
            return None

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
                    # flat keyword arguments: Flower shows sweep, experiment and project by name
                    name, kwargs = Task.RUN.value, RunMessage(experiment=first).kwargs()
                    task_id = f"{first.experiment_id}-{uuid.uuid4().hex[:8]}"
                    shown = kwargs
                else:
                    message = BatchMessage(
                        sweep_id=first.sweep_id, queue=first.resource, experiments=tuple(group)
                    )
                    name, kwargs = Task.BATCH.value, message.kwargs()
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
