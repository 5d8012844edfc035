"""Managed Braket devices through Celery: submit in one short task, poll in another.

No worker waits on a QPU queue: the submit task records the quantum-task ARN and schedules a
poll task, which re-schedules itself with a countdown (far below the visibility timeout) until
the task is terminal. The submission attempt (and so Braket's ``clientToken``) only changes when
a quantum task is known to have FAILED: a redelivered submit message finds the same task
instead of paying for a second one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from adapters import adapt_project
from adapters.circuit import CircuitAdapter
from adapters.spec import ProjectSpec
from orchestrator.dispatch import Dispatcher
from orchestrator.errors import (
    ConfigurationError,
    InputError,
    OrchestratorError,
    ResourceError,
    TransientError,
)
from orchestrator.expectations import Expectation
from orchestrator.models import Experiment, ExperimentResult, ExperimentStatus
from orchestrator.protocol import STOPPED_STATES, PollMessage, Task
from orchestrator.results import result_row
from orchestrator.settings import Settings
from orchestrator.store import SweepState

if TYPE_CHECKING:
    from orchestrator.braket.executor import BraketManagedExecutor

log = logging.getLogger(__name__)


class ManagedRunner:
    """Submits and polls the managed quantum tasks of a worker process."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        settings: Settings,
        state: Callable[[], SweepState],
        expectations: Callable[[str], Mapping[str, Expectation]] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.settings = settings
        self._state = state  # the process's SweepState, made lazily after the fork
        self._expectations = expectations or (lambda _sweep_id: {})  # each row's validation
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
        from orchestrator.braket.executor import BraketManagedExecutor
        from orchestrator.braket.prices import load_price_table

        if not self.settings.braket_s3_bucket:
            raise ConfigurationError(
                "managed Braket devices need an S3 bucket for results: set "
                "ORCHESTRATOR_BRAKET_S3_BUCKET (or braket_s3_bucket in the settings file)"
            )
        failover = {spec.device: list(spec.failover)} if spec.device and spec.failover else None
        return BraketManagedExecutor(
            self.state.raw_client(),
            s3_bucket=self.settings.braket_s3_bucket,
            s3_prefix=self.settings.braket_s3_prefix,
            failover=failover,
            prices=load_price_table(self.settings.price_table),
        )

    def _adapter(self, spec: ProjectSpec) -> CircuitAdapter:
        adapter = adapt_project(spec.path, spec)
        if not isinstance(adapter, CircuitAdapter):
            raise ConfigurationError(
                f"project '{spec.name}': device {spec.device} is a managed Braket device, "
                f"which runs circuit projects only; give the project a 'circuit' block"
            )
        return adapter

    # -- submit -----------------------------------------------------------------------------------

    def submit(
        self,
        task: Any,
        spec: ProjectSpec,
        exp: Experiment,
        *,
        attempt: int,
        host: str,
        token: str,
        backoff: Callable[[int], float],
    ) -> str:
        st, sid, index = self.state, exp.sweep_id, exp.index
        qattempt = st.quantum_attempt(sid, index)
        exp = exp.model_copy(update={"device": spec.device})
        try:
            adapter = self._adapter(spec)
            program, inputs = adapter.build_program(exp.parameters)
            executor = self.executor(spec)
            submission = executor.submit(exp, program, adapter.shots(exp.parameters), qattempt, inputs=inputs)
        except ResourceError as exc:
            st.pause_on_resource(sid, exp.resource, index, token, str(exc))
            return "paused"
        except TransientError as exc:
            st.release(sid, index, token)
            log.warning("submit of %s/%s deferred: %s", sid, index, exc)
            raise task.retry(countdown=backoff(task.request.retries), max_retries=None) from None
        except (InputError, OrchestratorError, Exception) as exc:  # noqa: BLE001 - recorded, never lost
            kind = exc.kind if isinstance(exc, OrchestratorError) else ConfigurationError.kind
            self._record(exp, attempt, host, token, ExperimentStatus.FAILED, error=str(exc), error_class=kind)
            return "failed"
        for alert in submission.alerts:
            st.event(sid, "alert", alert.message)
        # The poll is scheduled before this message is acked, and the ARN kept for status/cancel.
        poll = PollMessage(experiment=exp, task_arn=submission.task_arn, attempt=attempt)
        self.dispatcher.send(Task.POLL, poll.kwargs(), exp.resource, countdown=self.settings.poll_interval)
        st.note_quantum_task(sid, index, submission.task_arn, submission.device, qattempt, host, token)
        return "submitted"

    # -- poll -------------------------------------------------------------------------------------

    def poll(self, task: Any, spec: ProjectSpec, message: PollMessage) -> str:
        exp, task_arn, attempt = message.experiment, message.task_arn, message.attempt
        st, sid, index = self.state, exp.sweep_id, exp.index
        host = task.request.hostname or ""
        if st.is_terminal(sid, index):
            return "already-done"
        executor = self.executor(spec)
        if st.state(sid) in STOPPED_STATES:
            try:
                executor.cancel(task_arn)
            except OrchestratorError as exc:
                log.warning("could not cancel %s: %s", task_arn, exc)
            self._record(
                exp,
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
        from orchestrator.braket.results import to_result

        experiment = exp.model_copy(update={"device": spec.device})
        if outcome.completed:
            try:
                metrics = self._adapter(spec).analyze(outcome.result, exp.parameters)
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
        elif outcome.state == "FAILED" and st.resubmit_quantum(
            sid, exp.resource, index, self.settings.max_attempts
        ):
            # a new quantum task (a new clientToken) for the next publish of this experiment
            st.event(sid, "info", f"quantum task {task_arn} FAILED ({outcome.failure_reason}); resubmitting")
            return "resubmit"
        else:
            result = to_result(experiment, outcome, attempt=attempt)
        result = result.model_copy(
            update={"worker_host": host, "reproducibility_hash": exp.reproducibility_hash}
        )
        st.record(
            sid,
            index,
            exp.experiment_id,
            result_row(result, self._expectations(sid)),
            status=result.status.value,
            final=True,
            cost=result.cost,
        )
        return result.status.value

    # -- helpers ----------------------------------------------------------------------------------

    def _record(
        self,
        exp: Experiment,
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
            experiment_id=exp.experiment_id,
            project_name=exp.project,
            parameters=exp.parameters,
            status=status,
            error_message=error,
            error_class=error_class,
            sweep_id=exp.sweep_id,
            index=exp.index,
            repeat=exp.repeat,
            attempt=attempt,
            worker_host=host,
            resource=exp.resource,
            device=exp.device,
            reproducibility_hash=exp.reproducibility_hash,
            extra=extra or {},
        )
        self.state.record(
            exp.sweep_id,
            exp.index,
            exp.experiment_id,
            result_row(result),
            status=status.value,
            final=True,
            lease_token=token,
        )
