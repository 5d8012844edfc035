"""Task registration on the factory-built app. The work itself lives in :mod:`workers.runner`
(and :mod:`workers.batch`)."""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from typing import Any

from celery import Celery
from celery.signals import task_received, worker_process_shutdown, worker_ready, worker_shutdown

from core.archive import PREFIX as ARCHIVE_PREFIX
from core.protocol import BatchMessage, OptimizeMessage, PollMessage, RunMessage, Task
from core.settings import Settings
from workers import batch, prefetch
from workers.runner import ExperimentRunner

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 1.0
EXIT_GRACE_SECONDS = 0.1  # see _exit_soon


def register(app: Celery, settings: Settings) -> None:
    """Register the tasks of :class:`~core.protocol.Task` on ``app``; each rebuilds its message."""
    runner = ExperimentRunner(app, settings)

    @app.task(name=Task.RUN.value, bind=True, max_retries=None, acks_late=True)
    def run_experiment(self: Any, **kwargs: Any) -> str:
        """Run one experiment of a sweep; the result goes to Redis before the message is acked."""
        return runner.run(self, RunMessage.of(kwargs).experiment)

    @app.task(
        name=Task.BATCH.value,
        bind=True,
        max_retries=None,
        acks_late=True,
        Request="workers.prefetch:BatchRequest",
    )
    def run_batch(self: Any, **kwargs: Any) -> str:
        """Run several short experiments of a sweep, each exactly once (see :mod:`workers.batch`)."""
        return batch.run_batch(runner, self, BatchMessage.of(kwargs))

    @app.task(name=Task.POLL.value, bind=True, max_retries=None, acks_late=True)
    def poll_quantum_task(self: Any, **kwargs: Any) -> str:
        """Look at a managed quantum task once; re-scheduled with a countdown until it is terminal."""
        return runner.poll(self, PollMessage.of(kwargs))

    @app.task(name=Task.OPTIMIZE.value, ignore_result=True)
    def optimize(**kwargs: Any) -> int:
        """Beat task: refit the model of every adaptive sweep and re-score its pending experiments."""
        from orchestrator.optimizer.service import refit_all, refit_sweep

        message = OptimizeMessage.of(kwargs)
        if message.sweep_id:
            refit_sweep(runner.state, message.sweep_id, pool_size=settings.candidate_pool)
            return 1
        return refit_all(runner.state, settings)

    _register_presence(app, runner)


def _exit_soon(exitcode: int | None = None, **_: Any) -> None:
    """A pool process that has told its parent it is going (billiard's ``Worker._do_exit``) then
    sleeps a whole second before it exits: every worker stop, and so every ``orchestrator run``,
    waited that second. Exit a tenth of a second after instead: the goodbye is in the pipe by then."""
    threading.Timer(EXIT_GRACE_SECONDS, os._exit, args=(exitcode or 0,)).start()


def _register_presence(app: Celery, runner: ExperimentRunner) -> None:
    presence = Presence(app, runner)
    worker_ready.connect(presence.announce, weak=False)
    task_received.connect(presence.note, weak=False)
    task_received.connect(prefetch.received, weak=False)
    worker_shutdown.connect(presence.goodbye, weak=False)
    worker_process_shutdown.connect(_exit_soon, weak=False)


class Presence:
    """The worker registry: announce the worker, beat its heartbeat, note the messages it holds."""

    def __init__(self, app: Celery, runner: ExperimentRunner) -> None:
        self.app, self.runner = app, runner
        self.stop = threading.Event()
        self._tags: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()  # (hostname, tag) to note
        self._noter: threading.Thread | None = None

    def announce(self, sender: Any = None, **_: Any) -> None:
        if sender is None or sender.app is not self.app:
            return
        hostname = sender.hostname or socket.gethostname()
        queues = [q.name for q in sender.app.amqp.queues.consume_from.values()]
        concurrency = int(getattr(sender.controller, "concurrency", None) or 1)
        self.runner.state.registry.beat(hostname, queues, concurrency, HEARTBEAT_SECONDS, **self.details())
        beat = threading.Thread(
            target=self._beat, args=(hostname, queues, concurrency), name="heartbeat", daemon=True
        )
        beat.start()

    def _beat(self, hostname: str, queues: list[str], concurrency: int) -> None:
        failing = False
        while not self.stop.wait(HEARTBEAT_SECONDS):
            try:
                self.runner.state.registry.beat(
                    hostname, queues, concurrency, HEARTBEAT_SECONDS, **self.details()
                )
            except Exception as exc:  # noqa: BLE001 - a broker outage must not end the heartbeat
                if not failing:  # once per outage, not once per beat
                    log.warning("worker heartbeat failed (%s); retrying every %ss", exc, HEARTBEAT_SECONDS)
                failing = True
                continue
            if failing:
                log.warning("worker heartbeat restored")
            failing = False

    def details(self) -> dict[str, Any]:
        """What the heartbeat tells besides liveness: the machine, and the code its cache holds."""
        try:
            cached = self.runner.code.cached()
        except OSError:
            cached = []
        return {"host": socket.gethostname(), "code": [f"{ARCHIVE_PREFIX}{d}" for d in cached]}

    def note(self, sender: Any = None, request: Any = None, **_: Any) -> None:
        # Note each message this worker holds: if the worker is lost, the coordinator puts the
        # ones it never acked back at once (Registry.lost), not after the visibility
        # timeout. ETA'd polls of quantum tasks may be held for minutes. Noted by a thread of
        # its own: a round trip here held every message back from the pool (the signal runs
        # on the event loop before the task is handed over).
        if sender is None or sender.app is not self.app or request is None:
            return
        tag = getattr(request.message, "delivery_tag", None)
        if tag is not None:
            self._tags.put((sender.hostname, str(tag)))
            if self._noter is None or not self._noter.is_alive():
                self._noter = threading.Thread(target=self._note_held, name="held-noter", daemon=True)
                self._noter.start()

    def _note_held(self) -> None:
        failing = False
        while True:
            held: dict[str, list[str]] = {}
            hostname, tag = self._tags.get()  # blocks until there is one, then takes what came meanwhile
            while True:
                held.setdefault(hostname, []).append(tag)
                try:
                    hostname, tag = self._tags.get_nowait()
                except queue.Empty:
                    break
            try:
                for hostname, tags in held.items():
                    self.runner.state.registry.hold(hostname, *tags)
            except Exception as exc:  # noqa: BLE001 - kombu's visibility timeout still restores them
                if not failing:  # once per outage, not once per message
                    log.warning(
                        "could not note held messages (%s); they come back after the visibility timeout", exc
                    )
                failing = True
                continue
            failing = False

    def goodbye(self, sender: Any = None, **_: Any) -> None:
        if sender is None or sender.app is not self.app:
            return
        self.stop.set()
        self.runner.state.registry.forget(sender.hostname)
