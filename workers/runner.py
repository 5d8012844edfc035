"""What a worker does with one experiment message.

Exactly-once effects on top of Celery's at-least-once delivery:

1. an experiment whose terminal result is recorded is skipped (redeliveries, duplicates);
2. a lease (``SET NX`` + heartbeat) keeps two deliveries from running it at the same time; a
   delivery that finds the lease taken comes back later instead of being dropped;
3. an attempt counter fails an experiment for good after ``max_attempts`` deliveries, so a
   project that kills its worker cannot loop forever;
4. the result row and its "done" mark are written in one Lua script *before* the ack.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import uuid
from functools import lru_cache
from typing import Any

from celery import Celery

from adapters import adapt_project
from adapters.spec import ProjectSpec
from orchestrator.config import SweepConfiguration
from orchestrator.errors import ResourceError, TransientError
from orchestrator.models import ExperimentResult, ExperimentStatus
from orchestrator.results import result_row
from orchestrator.settings import Settings
from orchestrator.state import SweepState, connect

log = logging.getLogger(__name__)


class ExperimentRunner:
    def __init__(self, app: Celery, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._state: SweepState | None = None
        self.host = socket.gethostname()

    @property
    def state(self) -> SweepState:
        # One connection per process, made lazily so prefork children do not share a socket.
        if self._state is None:
            self._state = SweepState(connect(str(self.app.conf.broker_url)))
        return self._state

    @lru_cache(maxsize=64)  # noqa: B019 - the runner lives as long as the worker process
    def _config(self, sweep_id: str, config_json: str) -> SweepConfiguration:
        return SweepConfiguration.model_validate_json(config_json)

    def project_spec(self, sweep_id: str, project: str) -> ProjectSpec:
        config_json = self.state.config_json(sweep_id)
        if config_json is None:
            raise LookupError(f"sweep {sweep_id} is unknown to this broker")
        config = self._config(sweep_id, config_json)
        return next(p for p in config.projects if p.name == project)

    def run(self, task: Any, *, sweep_id: str, index: int, experiment_id: str, project: str,
            parameters: dict[str, Any], queue: str) -> str:
        st = self.state
        sweep_state = st.state(sweep_id)
        if sweep_state is None:
            log.warning("sweep %s unknown; dropping experiment %s", sweep_id, experiment_id)
            return "unknown-sweep"
        if sweep_state in ("cancelled", "cancelling", "timed_out"):
            st.unqueue(sweep_id, queue, index)
            return "cancelled"
        if st.is_terminal(sweep_id, index):
            st.unqueue(sweep_id, queue, index)
            return "already-done"

        token = f"{self.host}:{uuid.uuid4().hex}"
        if not st.acquire_lease(sweep_id, index, token, self.settings.lease_ttl):
            # Another delivery is running it, or died less than a lease ago: look again later.
            raise task.retry(countdown=self.settings.lease_ttl, max_retries=None)

        attempt = st.start(sweep_id, queue, index, task.request.hostname or self.host)
        base = dict(experiment_id=experiment_id, project_name=project, parameters=parameters, sweep_id=sweep_id,
                    index=index, attempt=attempt, worker_host=task.request.hostname or self.host, resource=queue)
        if attempt > self.settings.max_attempts:
            result = ExperimentResult(**base, status=ExperimentStatus.FAILED, error_class="resource",
                                      error_message=f"gave up after {attempt - 1} deliveries: the worker "
                                      f"running it was lost each time (killed, out of memory?); check the "
                                      f"project's memory use and the workers' logs")
            st.record(sweep_id, index, experiment_id, result_row(result), status="failed", final=True,
                      lease_token=token)
            return "failed"

        stop = threading.Event()
        beat = threading.Thread(target=self._keep_lease, args=(sweep_id, index, token, stop), daemon=True)
        beat.start()
        try:
            result = self._execute(sweep_id, project, parameters)
        finally:
            stop.set()
        result = result.model_copy(update={k: v for k, v in base.items() if k != "parameters"})

        if result.status == ExperimentStatus.FAILED and result.error_class == TransientError.kind:
            retries = task.request.retries
            if retries < self.settings.max_retries:
                st.release(sweep_id, index, token)
                raise task.retry(countdown=self._backoff(retries), max_retries=None)
        if result.status == ExperimentStatus.FAILED and result.error_class == ResourceError.kind:
            st.release(sweep_id, index, token)
            st.r.zadd(st.pending_key(sweep_id, queue), {str(index): float("inf")})
            st.set_state(sweep_id, "paused", paused_reason=result.error_message or "resource error")
            st.event(sweep_id, "alert", f"sweep paused: {result.error_message}")
            return "paused"
        st.record(sweep_id, index, experiment_id, result_row(result), status=result.status.value, final=True,
                  lease_token=token, cost=result.cost)
        return result.status.value

    def _execute(self, sweep_id: str, project: str, parameters: dict[str, Any]) -> ExperimentResult:
        try:
            spec = self.project_spec(sweep_id, project)
            return adapt_project(spec.path, spec).execute_with_parameters(parameters)
        except Exception as exc:  # noqa: BLE001 - an adapter bug must still leave a row
            return ExperimentResult(experiment_id="", project_name=project, parameters=parameters,
                                    status=ExperimentStatus.FAILED, error_class="configuration",
                                    error_message=f"project '{project}': {exc}")

    def _keep_lease(self, sweep_id: str, index: int, token: str, stop: threading.Event) -> None:
        ttl = self.settings.lease_ttl
        while not stop.wait(ttl / 3):
            try:
                self.state.refresh_lease(sweep_id, index, token, ttl)
            except Exception:  # noqa: BLE001 - a missed heartbeat is retried on the next tick
                log.warning("lease heartbeat failed for %s/%s", sweep_id, index, exc_info=True)

    def _backoff(self, retries: int) -> float:
        """Exponential backoff with full jitter, kept well below the visibility timeout."""
        cap = min(self.settings.retry_backoff_max, self.settings.visibility_timeout / 4)
        return random.uniform(0, min(cap, self.settings.retry_backoff * 2**retries))
