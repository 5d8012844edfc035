"""Managed Braket devices through Celery: submit in one short task, poll in another.

No worker waits on a QPU queue: the submit task records the quantum-task ARN and schedules a
poll task, which re-schedules itself with a countdown (far below the visibility timeout) until
the task is terminal. The submission attempt (and so Braket's ``clientToken``) only changes when
a quantum task is known to have FAILED: a redelivered submit message finds the same task
instead of paying for a second one.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from celery import Celery

from adapters import adapt_project
from adapters.circuit import CircuitAdapter
from adapters.spec import ProjectSpec
from orchestrator.errors import (
    ConfigurationError,
    InputError,
    OrchestratorError,
    ResourceError,
    TransientError,
)
from orchestrator.models import Experiment, ExperimentResult, ExperimentStatus
from orchestrator.results import result_row
from orchestrator.settings import Settings
from orchestrator.state import SweepState, connect

if TYPE_CHECKING:
    from workers.executors.braket_managed import BraketManagedExecutor

log = logging.getLogger(__name__)

POLL_TASK = "orchestrator.poll_quantum_task"


class ManagedRunner:
    def __init__(self, app: Celery, settings: Settings, state: Any) -> None:
        self.app = app
        self.settings = settings
        self._state = state  # a callable returning the process's SweepState
        self._executors: dict[str, BraketManagedExecutor] = {}

    @property
    def state(self) -> SweepState:
        return self._state()

    def executor(self, spec: ProjectSpec) -> BraketManagedExecutor:
        """One executor per project spec for the life of the worker (device and price caches)."""
        key = spec.model_dump_json()
        if key not in self._executors:
            self._executors[key] = self._make_executor(spec)
        return self._executors[key]

    def _make_executor(self, spec: ProjectSpec) -> BraketManagedExecutor:
        from orchestrator.resources.prices import load_price_table
        from workers.executors.braket_managed import BraketManagedExecutor

        if not self.settings.braket_s3_bucket:
            raise ConfigurationError(
                "managed Braket devices need an S3 bucket for results: set "
                "ORCHESTRATOR_BRAKET_S3_BUCKET (or braket_s3_bucket in the settings file)"
            )
        failover = {spec.device: list(spec.failover)} if spec.device and spec.failover else None
        return BraketManagedExecutor(
            self._raw_client(),
            s3_bucket=self.settings.braket_s3_bucket,
            s3_prefix=self.settings.braket_s3_prefix,
            failover=failover,
            prices=load_price_table(self.settings.price_table),
        )

    def _raw_client(self) -> Any:
        # The executors decode replies themselves: they get a bytes client on the same server.
        return connect(str(self.app.conf.broker_url), decode=False)

    def _adapter(self, spec: ProjectSpec) -> CircuitAdapter:
        adapter = adapt_project(spec.path, spec)
        if not isinstance(adapter, CircuitAdapter):
            raise ConfigurationError(
                f"project '{spec.name}': device {spec.device} is a managed Braket device, "
                f"which runs circuit projects only; give the project a 'circuit' block"
            )
        return adapter

    def _experiment(self, spec: ProjectSpec, kw: dict[str, Any]) -> Experiment:
        return Experiment(
            sweep_id=kw["sweep_id"],
            experiment_id=kw["experiment_id"],
            index=kw["index"],
            project=spec.name,
            parameters=kw["parameters"],
            resource=kw["queue"],
            device=spec.device,
        )

    # -- submit -----------------------------------------------------------------------------------

    def submit(
        self,
        task: Any,
        spec: ProjectSpec,
        *,
        attempt: int,
        host: str,
        token: str,
        kw: dict[str, Any],
        backoff: Any,
    ) -> str:
        st, sid, index = self.state, kw["sweep_id"], kw["index"]
        qattempt = int(st.r.hget(st.key(sid, "qattempt"), index) or 1)
        try:
            adapter = self._adapter(spec)
            program, inputs = adapter.build_program(kw["parameters"])
            executor = self.executor(spec)
            submission = executor.submit(
                self._experiment(spec, kw), program, adapter.shots(kw["parameters"]), qattempt, inputs=inputs
            )
        except ResourceError as exc:
            return self._pause(kw, token, exc)
        except TransientError as exc:
            st.release(sid, index, token)
            log.warning("submit of %s/%s deferred: %s", sid, index, exc)
            raise task.retry(countdown=backoff(task.request.retries), max_retries=None) from None
        except (InputError, OrchestratorError, Exception) as exc:  # noqa: BLE001 - recorded, never lost
            kind = exc.kind if isinstance(exc, OrchestratorError) else ConfigurationError.kind
            self._record(kw, attempt, host, token, ExperimentStatus.FAILED, error=str(exc), error_class=kind)
            return "failed"
        for alert in submission.alerts:
            st.event(sid, "alert", alert.message)
        # The poll is scheduled before this message is acked, and the ARN kept for status/cancel.
        self.app.send_task(
            POLL_TASK,
            queue=kw["queue"],
            routing_key=kw["queue"],
            countdown=self.settings.poll_interval,
            kwargs={**kw, "task_arn": submission.task_arn, "attempt": attempt},
        )
        pipe = st.r.pipeline()
        pipe.hset(
            st.key(sid, "tasks"),
            index,
            json.dumps({"arn": submission.task_arn, "device": submission.device, "qattempt": qattempt}),
        )
        pipe.hset(
            st.key(sid, "running"),
            index,
            json.dumps({"host": host, "since": time.time(), "task_arn": submission.task_arn}),
        )
        pipe.execute()
        if st.r.get(st.lease_key(sid, index)) == token:
            st.r.delete(st.lease_key(sid, index))  # the poll task owns it now
        return "submitted"

    # -- poll -------------------------------------------------------------------------------------

    def poll(self, task: Any, spec: ProjectSpec, *, task_arn: str, attempt: int, kw: dict[str, Any]) -> str:
        st, sid, index = self.state, kw["sweep_id"], kw["index"]
        host = task.request.hostname or ""
        if st.is_terminal(sid, index):
            return "already-done"
        executor = self.executor(spec)
        if st.state(sid) in ("cancelling", "cancelled", "timed_out"):
            try:
                executor.cancel(task_arn)
            except OrchestratorError as exc:
                log.warning("could not cancel %s: %s", task_arn, exc)
            self._record(
                kw,
                attempt,
                host,
                "",
                ExperimentStatus.CANCELLED,
                error="sweep cancelled",
                extra={"task_arn": task_arn},
            )
            return "cancelled"
        try:
            outcome = executor.poll(task_arn)
        except TransientError:
            raise task.retry(countdown=self.settings.poll_interval, max_retries=None) from None
        if not outcome.terminal:
            raise task.retry(countdown=self.settings.poll_interval, max_retries=None)
        for alert in outcome.alerts:
            st.event(sid, "alert", alert.message)
        from workers.executors.managed_results import to_result

        experiment = self._experiment(spec, kw)
        if outcome.completed:
            try:
                metrics = self._adapter(spec).analyze(outcome.result, kw["parameters"])
            except Exception as exc:  # noqa: BLE001 - the task is paid for: keep its row
                result = to_result(experiment, outcome, attempt=attempt)
                result = result.model_copy(
                    update={
                        "status": ExperimentStatus.FAILED,
                        "error_class": "configuration",
                        "error_message": f"project '{spec.name}': analyze failed: {exc}",
                    }
                )
            else:
                result = to_result(experiment, outcome, metrics=metrics, attempt=attempt)
        elif outcome.state == "FAILED":
            qattempt = st.r.hincrby(st.key(sid, "qattempt"), index, 1)
            if qattempt <= self.settings.max_attempts:
                # a new quantum task (a new clientToken) for the next publish of this experiment
                st.r.hdel(st.key(sid, "running"), index)
                st.r.zadd(st.pending_key(sid, kw["queue"]), {str(index): float("inf")})
                st.event(
                    sid, "info", f"quantum task {task_arn} FAILED ({outcome.failure_reason}); resubmitting"
                )
                return "resubmit"
            result = to_result(experiment, outcome, attempt=attempt)
        else:
            result = to_result(experiment, outcome, attempt=attempt)
        result = result.model_copy(update={"worker_host": host})
        st.record(
            sid,
            index,
            kw["experiment_id"],
            result_row(result),
            status=result.status.value,
            final=True,
            cost=result.cost,
        )
        return result.status.value

    # -- helpers ----------------------------------------------------------------------------------

    def _record(
        self,
        kw: dict[str, Any],
        attempt: int,
        host: str,
        token: str,
        status: ExperimentStatus,
        *,
        error: str | None = None,
        error_class: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        result = ExperimentResult(
            experiment_id=kw["experiment_id"],
            project_name=kw["project"],
            parameters=kw["parameters"],
            status=status,
            error_message=error,
            error_class=error_class,
            sweep_id=kw["sweep_id"],
            index=kw["index"],
            attempt=attempt,
            worker_host=host,
            resource=kw["queue"],
            extra=extra or {},
        )
        self.state.record(
            kw["sweep_id"],
            kw["index"],
            kw["experiment_id"],
            result_row(result),
            status=status.value,
            final=True,
            lease_token=token,
        )

    def _pause(self, kw: dict[str, Any], token: str, exc: Exception) -> str:
        st, sid, index = self.state, kw["sweep_id"], kw["index"]
        st.release(sid, index, token)
        st.r.zadd(st.pending_key(sid, kw["queue"]), {str(index): float("inf")})
        st.set_state(sid, "paused", paused_reason=str(exc))
        st.event(sid, "alert", f"sweep paused: {exc}")
        return "paused"
