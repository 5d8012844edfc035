"""The one Celery app, built by a factory and passed around: no hidden global app.

Every process (coordinator, workers, beat, Flower) builds its app here from the same
``Settings``, so the broker URL and visibility timeout are one value everywhere.
"""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from orchestrator.settings import Settings, load_settings
from orchestrator.state import RESOURCE_QUEUES

QUEUES = (*RESOURCE_QUEUES, "control")
RUN_TASK = "orchestrator.run_experiment"
BATCH_TASK = "orchestrator.run_batch"  # several short experiments of one sweep and queue
OPTIMIZE_TASK = "orchestrator.optimize"


def create_app(settings: Settings | None = None, *, broker_url: str | None = None) -> Celery:
    """Build the Celery app for ``settings`` (or ``broker_url``) and register the tasks on it."""
    settings = settings or load_settings()
    url = broker_url or settings.broker_url
    if not url:
        raise ValueError("create_app needs a broker URL; the embedded mode starts one first")
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
        task_queues=[Queue(name, exchange, routing_key=name) for name in QUEUES],
        task_default_queue="local_cpu",
        task_default_exchange="orchestrator",
        task_default_routing_key="local_cpu",
        task_routes={OPTIMIZE_TASK: {"queue": "control", "routing_key": "control"}},
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
                "task": OPTIMIZE_TASK,
                "schedule": settings.optimizer_interval,
                "options": {"expires": settings.optimizer_interval * 2},
            },
        },
    )
    app.conf.orchestrator_settings = settings.model_dump(mode="json")
    from workers import tasks

    tasks.register(app, settings)
    return app
