"""Task registration on the factory-built app. The work itself lives in :mod:`workers.runner`."""

from __future__ import annotations

import socket
import threading
from typing import Any

from celery import Celery
from celery.signals import task_received, worker_ready, worker_shutdown

from orchestrator.settings import Settings
from workers.app import BATCH_TASK, OPTIMIZE_TASK, RUN_TASK
from workers.managed import POLL_TASK
from workers.runner import ExperimentRunner


def register(app: Celery, settings: Settings) -> None:
    runner = ExperimentRunner(app, settings)

    @app.task(name=RUN_TASK, bind=True, max_retries=None, acks_late=True)
    def run_experiment(
        self: Any,
        sweep_id: str,
        index: int,
        experiment_id: str,
        project: str,
        parameters: dict[str, Any],
        queue: str = "local_cpu",
        added: bool = False,
        shot_fraction: float | None = None,
    ) -> str:
        """Run one experiment of a sweep; the result goes to Redis before the message is acked."""
        return runner.run(
            self,
            sweep_id=sweep_id,
            index=index,
            experiment_id=experiment_id,
            project=project,
            parameters=parameters,
            queue=queue,
            added=added,
            shot_fraction=shot_fraction,
        )

    @app.task(name=BATCH_TASK, bind=True, max_retries=None, acks_late=True)
    def run_batch(self: Any, sweep_id: str, queue: str, experiments: list[dict[str, Any]]) -> str:
        """Run several short experiments of a sweep, each exactly once (see ``ExperimentRunner.run_batch``)."""
        return runner.run_batch(self, sweep_id=sweep_id, queue=queue, experiments=experiments)

    @app.task(name=POLL_TASK, bind=True, max_retries=None, acks_late=True)
    def poll_quantum_task(
        self: Any,
        sweep_id: str,
        index: int,
        experiment_id: str,
        project: str,
        parameters: dict[str, Any],
        queue: str,
        task_arn: str,
        attempt: int = 1,
    ) -> str:
        """Look at a managed quantum task once; re-scheduled with a countdown until it is terminal."""
        return runner.poll(
            self,
            sweep_id=sweep_id,
            index=index,
            experiment_id=experiment_id,
            project=project,
            parameters=parameters,
            queue=queue,
            task_arn=task_arn,
            attempt=attempt,
        )

    @app.task(name=OPTIMIZE_TASK, ignore_result=True)
    def optimize() -> int:
        """Beat task: refit the model of every adaptive sweep and re-score its pending experiments."""
        from orchestrator.optimizer.service import refit_all

        return refit_all(runner.state, settings)

    stop = threading.Event()

    def _heartbeat(hostname: str, queues: list[str], concurrency: int) -> None:
        while not stop.wait(5.0):
            runner.state.heartbeat_worker(hostname, queues, concurrency)

    @worker_ready.connect(weak=False)
    def _announce(sender: Any = None, **_: Any) -> None:
        if sender is None or sender.app is not app:
            return
        hostname = sender.hostname or socket.gethostname()
        queues = [q.name for q in sender.app.amqp.queues.consume_from.values()]
        concurrency = int(getattr(sender.controller, "concurrency", None) or 1)
        runner.state.heartbeat_worker(hostname, queues, concurrency)
        threading.Thread(target=_heartbeat, args=(hostname, queues, concurrency), daemon=True).start()

    @task_received.connect(weak=False)
    def _note(sender: Any = None, request: Any = None, **_: Any) -> None:
        # Note each message this worker holds: if the worker is lost, the coordinator puts the
        # ones it never acked back at once (SweepState.lost_workers), not after the visibility
        # timeout. ETA'd polls of quantum tasks may be held for minutes.
        if sender is None or sender.app is not app or request is None:
            return
        tag = getattr(request.message, "delivery_tag", None)
        if tag is not None:
            runner.state.hold(sender.hostname, str(tag))

    @worker_shutdown.connect(weak=False)
    def _goodbye(sender: Any = None, **_: Any) -> None:
        if sender is None or sender.app is not app:
            return
        stop.set()
        runner.state.forget_worker(sender.hostname)
