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
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from adapters import adapt_project
from adapters.circuit import CircuitAdapter
from core.errors import (
    ConfigurationError,
    InputError,
    OrchestratorError,
    ResourceError,
    TransientError,
)
from core.expectations import Expectation
from core.models import Experiment, ExperimentResult, ExperimentStatus
from core.plan import run_parameters
from core.project import ProjectSpec
from core.protocol import STOPPED_STATES, PollMessage, Task
from core.rows import result_row
from core.settings import Settings
from orchestrator.braket.retry import BraketUnreachable
from orchestrator.dispatch import Dispatcher
from orchestrator.store import SweepState

if TYPE_CHECKING:
    from orchestrator.braket.executor import BraketManagedExecutor

log = logging.getLogger(__name__)


def _noise(spec: ProjectSpec) -> dict[str, Any]:
    """``{"noise": ...}``: the calibration snapshot a DM1 rung simulated (as a local:dm row has it)."""
    return {"noise": spec.noise.model_dump()} if spec.noise else {}


class BraketLink:
    """While Braket is unreachable from this worker, it stops taking paid messages.

    Deferring each message for a backoff kept paid work on a worker that could not submit it
    (12 experiments took 5 minutes with one healthy worker beside it). Instead the experiment
    goes back to pending for another worker, this worker stops consuming the queue, and a probe
    (one cheap call every ``probe_seconds``) adds the queue back once Braket answers.
    """

    def __init__(self, app: Any, probe_seconds: float) -> None:
        self.app, self.probe_seconds = app, probe_seconds
        self._down: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def lost(self, hostname: str, queue: str, probe: Callable[[], bool]) -> None:
        with self._lock:
            if (hostname, queue) in self._down:
                return
            self._down.add((hostname, queue))
        log.warning(
            "Braket is unreachable from %s: it stops consuming %s until a probe answers", hostname, queue
        )
        self.app.control.cancel_consumer(queue, destination=[hostname], reply=False)
        threading.Thread(
            target=self._probe, args=(hostname, queue, probe), name="braket-probe", daemon=True
        ).start()

    def _probe(self, hostname: str, queue: str, probe: Callable[[], bool]) -> None:
        while not probe():
            time.sleep(self.probe_seconds)
        self.app.control.add_consumer(
            queue, exchange="orchestrator", routing_key=queue, destination=[hostname], reply=False
        )
        log.warning("Braket answers %s again: it consumes %s again", hostname, queue)
        with self._lock:
            self._down.discard((hostname, queue))


class ManagedRunner:
    """Submits and polls the managed quantum tasks of a worker process."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        settings: Settings,
        state: Callable[[], SweepState],
        expectations: Callable[[str], Mapping[str, Expectation]] | None = None,
        runnable: Callable[[Experiment], ProjectSpec] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.settings = settings
        self._state = state  # the process's SweepState, made lazily after the fork
        self._expectations = expectations or (lambda _sweep_id: {})  # each row's validation
        self._runnable = runnable  # the project as this host runs it (its shipped code, fetched)
        self._executors: dict[str, BraketManagedExecutor] = {}
        self.link = BraketLink(dispatcher.app, settings.braket_probe_seconds)

    @property
    def state(self) -> SweepState:
        return self._state()

    def executor(self, spec: ProjectSpec) -> BraketManagedExecutor:
        """One executor per device and failover for the life of the worker (device and price caches);
        the rest of the spec (a ``device: auto`` choice of thousands of points) changes nothing in it."""
        key = json.dumps([spec.device, spec.failover])
        if key not in self._executors:
            self._executors[key] = self._make_executor(spec)
        return self._executors[key]

    def _make_executor(self, spec: ProjectSpec) -> BraketManagedExecutor:
        from orchestrator.braket.executor import BraketManagedExecutor
        from orchestrator.braket.limits import configured_overrides, load_service_limits
        from orchestrator.braket.prices import load_price_table

        if not self.settings.braket_s3_bucket:
            raise ConfigurationError(
                "managed Braket devices need an S3 bucket for results: set "
                "ORCHESTRATOR_BRAKET_S3_BUCKET (or braket_s3_bucket in the settings file)"
            )
        failover = {spec.device: list(spec.failover)} if spec.device and spec.failover else None
        return BraketManagedExecutor(
            self.state.braket_ledgers(),
            s3_bucket=self.settings.braket_s3_bucket,
            s3_prefix=self.settings.braket_s3_prefix,
            failover=failover,
            prices=load_price_table(self.settings.price_table),
            # Service Quotas where reachable, then what the deployment configured
            limits=load_service_limits(overrides=configured_overrides()).limits,
        )

    def _adapter(self, spec: ProjectSpec, exp: Experiment) -> CircuitAdapter:
        """The circuit project's adapter, on this host's copy of its code.

        Raises:
            TransientError: its code cannot be fetched now.
        """
        if self._runnable is not None:
            spec = self._runnable(exp)
        adapter = adapt_project(spec.path, spec)
        if not isinstance(adapter, CircuitAdapter):
            raise ConfigurationError(
                f"project '{spec.name}': device {spec.device} is a managed Braket device, "
                f"which runs circuit projects only; give the project a 'circuit' block"
            )
        return adapter

    def has_paid_work(self, spec: ProjectSpec, exp: Experiment) -> bool:
        """True once a quantum task may exist for the experiment (noted, or an intent recorded
        before CreateQuantumTask). Such an experiment is never given up on its delivery count:
        its task is found again with the same token, polled to its end, recorded and settled."""
        st = self.state
        if st.quantum.task(exp.sweep_id, exp.index) is not None:
            return True
        try:
            store = self.executor(spec.on_rung(exp.parameters).on_device(exp.device)).store
        except OrchestratorError:
            return False  # not configured for Braket: nothing can have been submitted
        _, record = store.live(exp.experiment_id, st.quantum.attempt(exp.sweep_id, exp.index))
        return record is not None

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
        qattempt = st.quantum.attempt(sid, index)
        run = run_parameters(spec, exp.parameters)  # a ladder rung's shots, no `fidelity`
        # device: auto: the device chosen for its circuit; a ladder: its rung's device and noise
        spec = spec.on_rung(exp.parameters).on_device(exp.device)
        exp = exp.model_copy(update={"device": spec.device})
        try:
            adapter = self._adapter(spec, exp)
            program, inputs = adapter.build_program(run)
            executor = self.executor(spec)
            submission = executor.submit(exp, program, adapter.shots(run), qattempt, inputs=inputs)
        except ResourceError as exc:
            st.pause_on_resource(sid, exp.resource, index, token, str(exc))
            return "paused"
        except BraketUnreachable as exc:
            st.give_back(sid, exp.resource, index, token)  # for a worker that reaches Braket
            log.warning("submit of %s/%s given back: %s", sid, index, exc)
            device = str(spec.device)
            self.link.lost(
                task.request.hostname or host, exp.resource, lambda: self.executor(spec).reachable(device)
            )
            return "given back"
        except TransientError as exc:
            st.release(sid, exp.resource, index, token)
            log.warning("submit of %s/%s deferred: %s", sid, index, exc)
            raise task.retry(countdown=backoff(task.request.retries), max_retries=None) from None
        except (InputError, OrchestratorError, Exception) as exc:  # noqa: BLE001 - recorded, never lost
            kind = exc.kind if isinstance(exc, OrchestratorError) else ConfigurationError.kind
            self._record(exp, attempt, host, token, ExperimentStatus.FAILED, error=str(exc), error_class=kind)
            return "failed"
        for alert in submission.alerts:
            st.event(sid, "alert", alert.message)
        # The poll is scheduled before this message is acked, and the ARN kept for status/cancel. A
        # redelivery that finds the task already noted has its poll chain running: no second one.
        # The poll message is kept with the task: a lost one is sent again by the coordinator.
        noted = st.quantum.task(sid, index)
        poll = PollMessage(experiment=exp, task_arn=submission.task_arn, attempt=attempt).kwargs()
        if not (submission.duplicate and noted and noted.get("arn") == submission.task_arn):
            self.dispatcher.send(Task.POLL, poll, exp.resource, countdown=self.settings.poll_interval)
        st.quantum.note(
            sid, index, submission.task_arn, submission.device, submission.attempt, host, token, poll
        )
        return "submitted"

    # -- poll -------------------------------------------------------------------------------------

    def poll(self, task: Any, spec: ProjectSpec, message: PollMessage) -> str:
        """One look at a quantum task. A task is polled to its end whatever became of its sweep:
        a paid result is recorded, and its reservation and concurrency slot are settled (or given
        back) in one step, on every path (completed, failed, cancelled)."""
        exp, task_arn, attempt = message.experiment, message.task_arn, message.attempt
        st, sid, index = self.state, exp.sweep_id, exp.index
        run = run_parameters(spec, exp.parameters)
        spec = spec.on_rung(exp.parameters).on_device(exp.device)
        host = task.request.hostname or ""
        executor = self.executor(spec)
        stopping = st.state(sid) in STOPPED_STATES
        if stopping:
            try:  # idempotent; a task that already ended answers with its state
                executor.cancel(task_arn)
            except OrchestratorError as exc:
                log.warning("could not cancel %s: %s", task_arn, exc)
        # a cancelled task reaches CANCELLED within a second or two: look again soon
        countdown = min(1.0, self.settings.poll_interval) if stopping else self.settings.poll_interval
        try:
            outcome = executor.poll(task_arn)  # settles (or releases) a terminal task
        except TransientError:
            raise task.retry(countdown=countdown, max_retries=None) from None
        if not outcome.terminal:
            raise task.retry(countdown=countdown, max_retries=None)
        for alert in outcome.alerts:
            st.event(sid, "alert", alert.message)
        if st.is_terminal(sid, index):
            return "already-done"  # another poll of the same task recorded it
        from orchestrator.braket.results import to_result

        experiment = exp.model_copy(update={"device": spec.device})
        if outcome.completed:
            try:
                result = self._analyzed(spec, experiment, outcome, attempt, run)
            except TransientError as exc:
                log.warning("analysis of %s waits for its project's code: %s", task_arn, exc)
                raise task.retry(countdown=countdown, max_retries=None) from None
        else:
            # FAILED, or CANCELLED by someone else: a new quantum task (a new clientToken) for the
            # next publish of this experiment, while attempts remain
            again = (
                False
                if stopping
                else st.quantum.resubmit(
                    sid, exp.resource, index, self.settings.max_attempts, task_arn=task_arn
                )
            )
            if again is None:
                return "already-done"  # another poll of this task sent it back
            if again:
                reason = outcome.failure_reason or "no reason given"
                st.event(sid, "info", f"quantum task {task_arn} {outcome.state} ({reason}); resubmitting")
                return "resubmit"
            result = to_result(experiment, outcome, attempt=attempt)
            if stopping and outcome.state == "CANCELLED":
                result = result.model_copy(
                    update={"error_message": "sweep cancelled: quantum task cancelled"}
                )
        result = result.model_copy(
            update={
                "worker_host": host,
                "reproducibility_hash": exp.reproducibility_hash,
                "seed": exp.seed,
                "extra": {**result.extra, **self._choice(spec, exp), **_noise(spec)},
            }
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

    def _analyzed(
        self, spec: ProjectSpec, experiment: Experiment, outcome: Any, attempt: int, run: dict[str, Any]
    ) -> ExperimentResult:
        """The row of a COMPLETED task: the project's metrics (``analyze`` given the parameters the
        run had, ``run``), or a failed row that keeps the paid result."""
        from orchestrator.braket.results import to_result

        adapter: CircuitAdapter | Exception
        try:
            adapter = self._adapter(spec, experiment)
        except TransientError:
            raise  # its code cannot be fetched now: the poll looks again (a second settle is a no-op)
        except Exception as exc:  # noqa: BLE001 - the task is paid for: its row is kept below
            adapter = exc
        try:
            if isinstance(adapter, Exception):
                raise adapter
            metrics = adapter.analyze(outcome.result, run)
        except Exception as exc:  # noqa: BLE001 - the task is paid for: keep its row
            result = to_result(experiment, outcome, attempt=attempt)
            return result.model_copy(
                update={
                    "status": ExperimentStatus.FAILED,
                    "error_class": "configuration",
                    "error_message": f"project '{spec.name}': analyze failed: {exc}",
                }
            )
        return to_result(experiment, outcome, metrics=metrics, attempt=attempt)

    @staticmethod
    def _choice(spec: ProjectSpec, exp: Experiment) -> dict[str, Any]:
        """``{"device_choice": ...}``: what ``device: auto`` chose for this experiment's circuit
        and why (empty for a named device)."""
        shape = spec.device_choice.shape_for({**spec.fixed, **exp.parameters}) if spec.device_choice else None
        return {"device_choice": shape.model_dump()} if shape and shape.device == spec.device else {}

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
        result = ExperimentResult.of(
            exp,
            status=status,
            error_message=error,
            error_class=error_class,
            attempt=attempt,
            worker_host=host,
            added=False,  # as this row has always been written; every other row carries exp.added
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
