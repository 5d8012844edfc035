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

import contextlib
import logging
import random
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from celery import Celery

from adapters import ProjectAdapter, adapt_project, loading
from adapters.contract import Progress
from core.archive import PREFIX as ARCHIVE_PREFIX
from core.config import SweepConfiguration
from core.errors import ExperimentError, ResourceError, TransientError, classify
from core.expectations import Expectation
from core.models import Experiment, ExperimentResult, ExperimentStatus
from core.plan import run_parameters
from core.project import ProjectSpec, is_managed
from core.protocol import Claim, PollMessage
from core.rows import result_row
from core.settings import Settings
from orchestrator.code import fetch_code, runnable_spec
from orchestrator.dispatch import Dispatcher
from orchestrator.store import Record, SweepState, connect
from orchestrator.store.optimizer import observation
from workers.code_cache import CodeCache
from workers.leases import LeaseKeeper
from workers.managed import ManagedRunner
from workers.pruning import Pruning

log = logging.getLogger(__name__)

_CACHED = 256  # (sweep, project) entries kept per process before the caches start over


class ExperimentRunner:
    """A worker process's runs: the single-experiment path, and the steps a batch
    (:mod:`workers.batch`) and a managed quantum task (:mod:`workers.managed`) share with it.

    Args:
        app: the worker's Celery app (its broker is the sweep state's Redis).
        settings: leases, attempts, retries and backoff.
    """

    def __init__(self, app: Celery, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._state: SweepState | None = None
        self.host = socket.gethostname()
        self.dispatcher = Dispatcher(app)
        self.managed = ManagedRunner(
            self.dispatcher, settings, lambda: self.state, self.expectations, runnable=self.runnable_spec
        )
        self.leases = LeaseKeeper(lambda: self.state, settings.lease_ttl)
        self._specs: dict[tuple[str, str], ProjectSpec] = {}
        # (sweep, project, code, device, rung): device: auto and a ladder run one project on several
        self._adapters: dict[tuple[str, str, str, str | None, int | None], ProjectAdapter] = {}
        self._session: _Session | None = None  # while a batch runs (see batch)
        self._runnable: dict[tuple[str, str, str], ProjectSpec] = {}
        self._code: CodeCache | None = None
        self._pruning: dict[str, Pruning | None] = {}  # sweep -> its early stopping
        self._expectations: dict[str, dict[str, Expectation]] = {}  # sweep -> its validation section

    @property
    def state(self) -> SweepState:
        # One connection per process, made lazily so prefork children do not share a socket.
        if self._state is None:
            self._state = SweepState(connect(str(self.app.conf.broker_url)))
        return self._state

    def project_spec(self, sweep_id: str, project: str) -> ProjectSpec:
        # A sweep id is a hash of the whole configuration, so the specs of an id never change:
        # fetched and validated once per process, not once per experiment.
        spec = self._specs.get((sweep_id, project))
        if spec is None:
            config_json = self.state.config_json(sweep_id)
            if config_json is None:
                raise LookupError(f"sweep {sweep_id} is unknown to this broker")
            config = SweepConfiguration.model_validate_json(config_json)
            if len(self._specs) > _CACHED:
                self._specs.clear()
                self._pruning.clear()
                self._expectations.clear()
            self._specs.update({(sweep_id, p.name): p for p in config.projects})
            self._pruning[sweep_id] = Pruning.of(config)
            self._expectations[sweep_id] = dict(config.validation)
            spec = self._specs.get((sweep_id, project))
            if spec is None:
                raise LookupError(f"sweep {sweep_id} has no project '{project}'")
        return spec

    def expectations(self, sweep_id: str) -> dict[str, Expectation]:
        """The sweep's ``validation:`` section, which each result row is checked against."""
        if sweep_id not in self._expectations:
            try:
                self.project_spec(sweep_id, "")  # loads (and caches) the sweep's configuration
            except LookupError:
                pass  # no project '': the configuration is cached now all the same
        return self._expectations.get(sweep_id, {})

    @property
    def code(self) -> CodeCache:
        """This host's cache of the sweeps' code (shared by the worker's processes)."""
        if self._code is None:
            root = Path(self.settings.state_dir) / "code"
            self._code = CodeCache(root, self._fetch_code, max_bytes=self.settings.code_cache_bytes)
        return self._code

    def _fetch_code(self, digest: str) -> bytes:
        return fetch_code(self.state.code(), digest)

    def runnable_spec(self, exp: Experiment) -> ProjectSpec:
        """The project as this host runs it: from the archive ``exp.code_version`` names (fetched
        once per host, checked, cached), or in place when its code is shared.

        Raises:
            TransientError: the archive cannot be fetched now (Redis unreachable).
            ConfigurationError: the archive is gone or corrupt, or shared code is missing here.
        """
        key = (exp.sweep_id, exp.project, exp.code_version)
        runnable = self._runnable.get(key)
        if runnable is not None:
            if runnable.code == "shipped" and exp.code_version.startswith(ARCHIVE_PREFIX):
                self.code.path(exp.code_version)  # still there (fetched again if pruned), marked in use
            return runnable.on_rung(exp.parameters).on_device(exp.device)
        spec = self.project_spec(exp.sweep_id, exp.project)
        shipped = spec.code == "shipped" and exp.code_version.startswith(ARCHIVE_PREFIX)
        folder = self.code.path(exp.code_version) if shipped else None
        if len(self._runnable) > _CACHED:
            self._runnable.clear()
        runnable = self._runnable[key] = runnable_spec(spec, folder)
        return runnable.on_rung(exp.parameters).on_device(exp.device)

    def _start(self, exp: Experiment, progress: Progress) -> Callable[[], ExperimentResult]:
        """Run the project through its adapter, reused across experiments where that changes
        nothing; returns what makes its result (:meth:`ProjectAdapter.result_of`, any thread).

        Building an adapter (kind detection, environment lookup) cost about as much as running a
        no-op project. Adapters keep no per-run state, but one with its own environment reports
        per run whether that environment was built for it, so only those without one are reused.
        An adapter that raises (a bug, a project that cannot load) still leaves a failed row; one
        whose code cannot be fetched now leaves a transient one (retried).
        """
        project, seed = exp.project, exp.seed
        key = (exp.sweep_id, project, exp.code_version, exp.device, exp.fidelity)
        parameters = exp.parameters

        def failed(exc: Exception) -> ExperimentResult:
            return ExperimentResult(
                experiment_id="",
                project_name=project,
                parameters=parameters,
                status=ExperimentStatus.FAILED,
                error_class=classify(exc) if isinstance(exc, ExperimentError) else "configuration",
                error_message=f"project '{project}': {exc}",
            )

        try:
            # a ladder rung's shots, no `fidelity`; the row keeps the experiment's (_bookkeeping)
            parameters = run_parameters(self.project_spec(exp.sweep_id, project), exp.parameters)
            spec = self.runnable_spec(exp)
            adapter = self._adapters.get(key)
            fresh = adapter is None
            if adapter is None:
                if spec.code == "shared":  # edited in place: the last scan's modules may be the old code
                    loading.forget(Path(spec.path))
                adapter = adapt_project(spec.path, spec)
            if self._session is not None:
                self._session.enter(adapter)
            ran = adapter.run_only(parameters, progress, seed)
            if fresh:
                self._keep(key, adapter)
        except Exception as exc:  # noqa: BLE001 - an adapter bug must still leave a row
            result = failed(exc)
            return lambda: result

        def finish() -> ExperimentResult:
            try:
                return adapter.result_of(ran)
            except Exception as exc:  # noqa: BLE001 - as above
                return failed(exc)

        return finish

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """The runs of one batch: each project stays loaded from one run to the next
        (:meth:`ProjectAdapter.session`), until the batch ends or runs another project."""
        self._session = _Session()
        try:
            yield
        finally:
            session, self._session = self._session, None
            session.close()

    def _keep(self, key: tuple[Any, ...], adapter: ProjectAdapter) -> None:
        try:
            reusable = adapter.environment() is None  # resolved (and cached) by the run just made
        except Exception:  # noqa: BLE001 - a broken environment: start afresh next time
            reusable = False
        if reusable:
            if len(self._adapters) > _CACHED:
                self._adapters.clear()
            self._adapters[key] = adapter

    def run(self, task: Any, exp: Experiment) -> str:
        st, sweep_id, queue, index = self.state, exp.sweep_id, exp.resource, exp.index
        host = task.request.hostname or self.host
        token = f"{self.host}:{uuid.uuid4().hex}"
        # sweep state, terminal check, lease and start in one round trip (see SweepState.claim)
        outcome, attempt = st.claim(
            sweep_id, queue, index, token, self.settings.lease_ttl, host, low_shots=bool(exp.shot_fraction)
        )
        if outcome == Claim.LEASED:
            # Another delivery is running it, or died less than a lease ago: look again later.
            raise task.retry(countdown=self.settings.lease_ttl, max_retries=None)
        if outcome != Claim.RUN:
            if outcome == Claim.UNKNOWN_SWEEP:
                log.warning("sweep %s unknown; dropping experiment %s", sweep_id, exp.experiment_id)
            return outcome.value
        managed = is_managed(self.device_of(exp))
        if attempt > self.settings.max_attempts and not (
            # Deliveries lost before a quantum task existed are what the count is for; once a task
            # may exist it is found again by its token and polled to its end, never given up.
            managed and self.managed.has_paid_work(self.project_spec(sweep_id, exp.project), exp)
        ):
            st.record_many(sweep_id, [self.given_up(exp, attempt, host, token, managed=managed)])
            return "failed"
        if managed:
            self.leases.hold(sweep_id, index, token)  # a slow submission must not look like a dead worker
            try:
                return self.managed.submit(
                    task,
                    self.project_spec(sweep_id, exp.project),
                    exp,
                    attempt=attempt,
                    host=host,
                    token=token,
                    backoff=self.backoff,
                )
            finally:
                self.leases.drop(sweep_id, index)
        result = self.run_claimed(exp, attempt, host, token)
        if result.status == ExperimentStatus.FAILED and result.error_class == TransientError.kind:
            retries = task.request.retries
            if retries < self.settings.max_retries:
                st.release(sweep_id, queue, index, token)
                raise task.retry(countdown=self.backoff(retries), max_retries=None)
        return self.settle(exp, result, token)

    def run_claimed(
        self, exp: Experiment, attempt: int, host: str, token: str, hold: bool = True
    ) -> ExperimentResult:
        """Run a claimed experiment (its lease kept alive meanwhile) and fill in its bookkeeping fields."""
        if hold:
            self.leases.hold(exp.sweep_id, exp.index, token)
        try:
            return self.start_claimed(exp, attempt, host)()
        finally:
            if hold:
                self.leases.drop(exp.sweep_id, exp.index)

    def start_claimed(self, exp: Experiment, attempt: int, host: str) -> Callable[[], ExperimentResult]:
        """Run a claimed experiment; returns what makes its result, bookkeeping fields filled in
        (on any thread: a batch makes it while its next experiment runs)."""
        pruning = self._pruning.get(exp.sweep_id)
        progress = pruning.progress(self.state, exp.sweep_id, exp.experiment_id) if pruning else Progress()
        finish = self._start(exp, progress)
        return lambda: finish().model_copy(update=_bookkeeping(exp, attempt, host))

    def settle(self, exp: Experiment, result: ExperimentResult, token: str, defer: bool = False) -> Any:
        """Record a finished run, or pause the sweep on a resource error.

        With ``defer`` a final row is returned as a :class:`Record` for the caller to write with
        others; otherwise it is written here and the outcome returned.
        """
        st, sweep_id = self.state, exp.sweep_id
        if result.status == ExperimentStatus.FAILED and result.error_class == ResourceError.kind:
            st.pause_on_resource(
                sweep_id, exp.resource, exp.index, token, result.error_message or "resource error"
            )
            return "paused"
        if exp.shot_fraction and result.status == ExperimentStatus.COMPLETED:
            return self._record_low_fidelity(exp, result, token)
        row = result_row(result, self.expectations(sweep_id))
        summary = observation(row, parameters=result.parameters, metrics=result.metrics, extra=result.extra)
        record = Record(
            exp.index, exp.experiment_id, row, result.status.value, True, token, result.cost, summary
        )
        if (pruning := self._pruning.get(sweep_id)) is not None:
            pruning.finished(st, sweep_id, exp.experiment_id, result)
        if defer:
            return record
        st.record_many(sweep_id, [record])
        return result.status.value

    def given_up(
        self, exp: Experiment, attempt: int, host: str, token: str, *, managed: bool = False
    ) -> Record:
        """The failed row of an experiment whose deliveries were all lost (``max_attempts``)."""
        what = (
            "the worker preparing its quantum task was lost each time (killed, out of memory?) before "
            "the task was submitted: no task of it is open and nothing was paid for it; check the "
            "workers' logs"
            if managed
            else "the worker running it was lost each time (killed, out of memory?); check the "
            "project's memory use and the workers' logs"
        )
        result = ExperimentResult(
            status=ExperimentStatus.FAILED,
            error_class="resource",
            error_message=f"gave up after {attempt - 1} deliveries: {what}",
            **_bookkeeping(exp, attempt, host),
        )
        return Record(exp.index, exp.experiment_id, result_row(result), "failed", True, token)

    def _record_low_fidelity(self, exp: Experiment, result: ExperimentResult, token: str) -> str:
        """Keep a low-shot run as a partial row; the optimizer then promotes it or stops it."""
        spec = self.project_spec(exp.sweep_id, exp.project)
        name = spec.circuit.shots_param if spec.circuit else spec.standardize.shots
        extra = {**result.extra, "shot_fraction": exp.shot_fraction, "shots": result.parameters.get(name)}
        result = result.model_copy(update={"status": ExperimentStatus.PARTIAL, "extra": extra})
        row = result_row(result, self.expectations(exp.sweep_id))
        self.state.record_partial(exp.sweep_id, exp.index, exp.experiment_id, row, token)
        if (pruning := self._pruning.get(exp.sweep_id)) is not None:
            pruning.low_shot_rung(self.state, exp, result, row)
        return "partial"

    def device_of(self, exp: Experiment) -> str | None:
        """The experiment's device (``device: auto``'s choice is in the experiment), or None (a
        local project, or one whose spec cannot load)."""
        try:
            spec = self.project_spec(exp.sweep_id, exp.project)
            return spec.on_rung(exp.parameters).on_device(exp.device).device
        except Exception:  # noqa: BLE001 - _start records the reason
            return None

    def poll(self, task: Any, message: PollMessage) -> str:
        """A poll step of a managed quantum task (see :mod:`workers.managed`)."""
        exp = message.experiment
        return self.managed.poll(task, self.project_spec(exp.sweep_id, exp.project), message)

    def backoff(self, retries: int) -> float:
        """Exponential backoff with full jitter, kept well below the visibility timeout."""
        cap = min(self.settings.retry_backoff_max, self.settings.visibility_timeout / 4)
        return random.uniform(0, min(cap, self.settings.retry_backoff * 2**retries))


class _Session:
    """The adapter a batch keeps loaded: one at a time (a batch may mix projects)."""

    def __init__(self) -> None:
        self.adapter: ProjectAdapter | None = None
        self._stack = contextlib.ExitStack()

    def enter(self, adapter: ProjectAdapter) -> None:
        if adapter is not self.adapter:
            self.close()
            self._stack.enter_context(adapter.session())
            self.adapter = adapter

    def close(self) -> None:
        self.adapter = None
        self._stack.close()


def _bookkeeping(exp: Experiment, attempt: int, host: str) -> dict[str, Any]:
    """The result fields a worker fills from the message: where, how and what was run."""
    return {
        "experiment_id": exp.experiment_id,
        "project_name": exp.project,
        "parameters": exp.parameters,
        "fidelity": exp.fidelity,
        "sweep_id": exp.sweep_id,
        "index": exp.index,
        "repeat": exp.repeat,
        "added": exp.added,
        "attempt": attempt,
        "worker_host": host,
        "resource": exp.resource,
        "reproducibility_hash": exp.reproducibility_hash,
        "seed": exp.seed,
        "code_version": exp.code_version,
    }
