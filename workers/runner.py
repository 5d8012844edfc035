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

import json
import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Celery

from adapters import ProjectAdapter, adapt_project
from adapters.base import Progress
from core.config import SweepConfiguration
from core.errors import ResourceError, TransientError
from core.expectations import Expectation
from core.models import Experiment, ExperimentResult, ExperimentStatus
from core.optimizer_config import EarlyStoppingConfig
from core.project import ProjectSpec, is_managed
from core.protocol import BatchMessage, Claim, PollMessage, RunMessage, Task
from core.results import result_row
from core.settings import Settings
from orchestrator.dispatch import Dispatcher
from orchestrator.optimizer.early_stopping import (
    EarlyStoppingRule,
    finite_values,
    shot_noise_variance,
    stopping_rule,
)
from orchestrator.store import STORE_ERRORS, Record, SweepState, connect
from workers.managed import ManagedRunner

log = logging.getLogger(__name__)

REPORT_SECONDS = 0.5  # a running curve is uploaded (for status and refits) at most this often
RECORD_PATIENCE = 30.0  # seconds a batch waits for the broker to come back before giving up on recording
RECORD_SECONDS = 0.25  # a batch writes its rows at least this often: what a killed worker can lose
_CACHED = 256  # (sweep, project) entries kept per process before the caches start over


@dataclass(frozen=True)
class Pruning:
    """A sweep's early stopping, as the worker applies it at each report."""

    metric: str  # the first objective: the curve's values and the low-shot rung's
    sign: float  # 1 when lower is better
    options: EarlyStoppingConfig
    rule: EarlyStoppingRule | None  # None: reports are kept but never judged

    @classmethod
    def of(cls, config: SweepConfiguration) -> Pruning | None:
        es = config.optimizer.early_stopping
        if not (config.adaptive_sampling and es.enabled and config.objectives):
            return None
        first = config.objectives[0]
        return cls(first.metric, -1.0 if first.goal == "maximize" else 1.0, es, stopping_rule(es))


class LeaseKeeper:
    """Keeps the leases of the experiments this process runs alive.

    One daemon thread per process refreshes every held lease each ``ttl / 3`` seconds in one
    round trip, instead of a thread per experiment. Started lazily, so each prefork child gets
    its own after the fork.
    """

    def __init__(self, state: Callable[[], SweepState], ttl: float) -> None:
        self._state = state
        self.ttl = ttl
        self._held: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def hold(self, sweep_id: str, index: int, token: str) -> None:
        with self._lock:
            self._held[(sweep_id, index)] = token
            if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="lease-keeper", daemon=True)
                self._thread.start()

    def drop(self, sweep_id: str, index: int) -> None:
        with self._lock:
            self._held.pop((sweep_id, index), None)

    def _loop(self) -> None:
        failing = False
        while True:
            time.sleep(self.ttl / 3)
            with self._lock:
                leases = [(sweep_id, index, token) for (sweep_id, index), token in self._held.items()]
            if not leases:
                continue
            try:
                self._state().refresh_leases(leases, self.ttl)
            except Exception as exc:  # noqa: BLE001 - a missed heartbeat is retried on the next tick
                if not failing:  # once per outage, not once per tick
                    log.warning("lease heartbeat failed for %d experiment(s): %s", len(leases), exc)
                failing = True
                continue
            if failing:
                log.warning("lease heartbeat restored")
            failing = False


class ExperimentRunner:
    def __init__(self, app: Celery, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._state: SweepState | None = None
        self.host = socket.gethostname()
        self.dispatcher = Dispatcher(app)
        self.managed = ManagedRunner(self.dispatcher, settings, lambda: self.state, self.expectations)
        self.leases = LeaseKeeper(lambda: self.state, settings.lease_ttl)
        self._specs: dict[tuple[str, str], ProjectSpec] = {}
        self._adapters: dict[tuple[str, str], ProjectAdapter] = {}
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

    def _execute(
        self,
        sweep_id: str,
        project: str,
        parameters: dict[str, Any],
        progress: Progress,
        seed: int | None = None,
    ) -> ExperimentResult:
        """Run the project through its adapter, reused across experiments where that changes nothing.

        Building an adapter (kind detection, environment lookup) cost about as much as running a
        no-op project. Adapters keep no per-run state, but one with its own environment reports
        per run whether that environment was built for it, so only those without one are reused.
        An adapter that raises (a bug, a project that cannot load) still leaves a failed row.
        """
        try:
            adapter = self._adapters.get((sweep_id, project))
            if adapter is not None:
                return adapter.execute_with_parameters(parameters, progress, seed)
            spec = self.project_spec(sweep_id, project)
            adapter = adapt_project(spec.path, spec)
            result = adapter.execute_with_parameters(parameters, progress, seed)
        except Exception as exc:  # noqa: BLE001 - an adapter bug must still leave a row
            return ExperimentResult(
                experiment_id="",
                project_name=project,
                parameters=parameters,
                status=ExperimentStatus.FAILED,
                error_class="configuration",
                error_message=f"project '{project}': {exc}",
            )
        try:
            reusable = adapter.environment() is None  # resolved (and cached) by the run just made
        except Exception:  # noqa: BLE001 - a broken environment: start afresh next time
            reusable = False
        if reusable:
            if len(self._adapters) > _CACHED:
                self._adapters.clear()
            self._adapters[(sweep_id, project)] = adapter
        return result

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
        managed = is_managed(self._device_of(sweep_id, exp.project))
        if attempt > self.settings.max_attempts and not (
            # Deliveries lost before a quantum task existed are what the count is for; once a task
            # may exist it is found again by its token and polled to its end, never given up.
            managed and self.managed.has_paid_work(self.project_spec(sweep_id, exp.project), exp)
        ):
            st.record_many(sweep_id, [self._given_up(exp, attempt, host, token, managed=managed)])
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
                    backoff=self._backoff,
                )
            finally:
                self.leases.drop(sweep_id, index)
        result = self._run_claimed(exp, attempt, host, token)
        if result.status == ExperimentStatus.FAILED and result.error_class == TransientError.kind:
            retries = task.request.retries
            if retries < self.settings.max_retries:
                st.release(sweep_id, queue, index, token)
                raise task.retry(countdown=self._backoff(retries), max_retries=None)
        return self._settle(exp, result, token)

    def run_batch(self, task: Any, message: BatchMessage) -> str:
        """Run a batch of short experiments: one message, one claim and one record round trip.

        The coordinator batches only experiments that take a few milliseconds, where Celery's
        per-message cost would dominate (see :mod:`orchestrator.pacing`). Each experiment keeps
        its exactly-once guarantees: claimed and leased on its own, recorded in chunks as the
        batch goes (a killed worker loses at most ``RECORD_SECONDS`` of work, which is run again
        on redelivery). Whatever needs the single path (a lease held elsewhere, a transient
        error to retry, a managed or low-shot run) is sent back as a message of its own.
        """
        st, sweep_id, queue = self.state, message.sweep_id, message.queue
        host = task.request.hostname or self.host
        token = f"{self.host}:{uuid.uuid4().hex}"
        claims = st.claim_many(
            sweep_id,
            queue,
            [e.index for e in message.experiments],
            token,
            self.settings.lease_ttl,
            host,
            low_shots={e.index for e in message.experiments if e.shot_fraction},
        )
        claimed: list[tuple[Experiment, int]] = []
        for exp, (outcome, attempt) in zip(message.experiments, claims, strict=True):
            if outcome == Claim.RUN:
                claimed.append((exp, attempt))
                self.leases.hold(sweep_id, exp.index, token)
            elif outcome == Claim.LEASED:
                self._send_single(exp, countdown=self.settings.lease_ttl)
        records: list[Record] = []
        flushed = time.monotonic()
        try:
            for exp, attempt in claimed:
                if exp.shot_fraction or is_managed(self._device_of(sweep_id, exp.project)):
                    # the single path owns the delivery count (and knows a paid task is never given up)
                    st.release(sweep_id, queue, exp.index, token)
                    self._send_single(exp)
                    continue
                if attempt > self.settings.max_attempts:
                    records.append(self._given_up(exp, attempt, host, token))
                    continue
                result = self._run_claimed(exp, attempt, host, token, hold=False)
                if result.status == ExperimentStatus.FAILED and result.error_class == TransientError.kind:
                    st.release(sweep_id, queue, exp.index, token)
                    self._send_single(exp, countdown=self._backoff(0))
                    continue
                record = self._settle(exp, result, token, defer=True)
                if isinstance(record, Record):
                    records.append(record)
                if time.monotonic() - flushed >= RECORD_SECONDS:
                    self._record_durably(sweep_id, records)
                    records, flushed = [], time.monotonic()
        finally:
            try:
                self._record_durably(sweep_id, records)
            finally:
                # Always: a lease kept alive for a batch that has ended would hold its experiments
                # "running" for ever (no orphan requeue touches a leased experiment).
                for exp, _ in claimed:
                    self.leases.drop(sweep_id, exp.index)
        return f"batch of {len(message.experiments)}: {len(claimed)} run"

    def _record_durably(self, sweep_id: str, records: list[Record]) -> None:
        """Record finished rows, waiting out a broker outage of up to ``RECORD_PATIENCE`` seconds:
        the runs are done, and a restarted Redis is back in a second or two. Each row counts
        once however often this is tried (the record script checks the terminal hash)."""
        deadline = time.monotonic() + RECORD_PATIENCE
        delay, warned = 0.1, False
        while True:
            try:
                self.state.record_many(sweep_id, records)
                return
            except STORE_ERRORS:
                if time.monotonic() + delay > deadline:
                    raise
                if not warned:  # once per outage, not per attempt
                    log.warning("broker unreachable while recording %d result(s); retrying", len(records))
                    warned = True
                time.sleep(delay)
                delay = min(2.0, delay * 2)

    def _send_single(self, exp: Experiment, countdown: float = 0) -> None:
        self.dispatcher.send(Task.RUN, RunMessage(experiment=exp).kwargs(), exp.resource, countdown)

    def _run_claimed(
        self, exp: Experiment, attempt: int, host: str, token: str, hold: bool = True
    ) -> ExperimentResult:
        """Run a claimed experiment (its lease kept alive meanwhile) and fill in its bookkeeping fields."""
        if hold:
            self.leases.hold(exp.sweep_id, exp.index, token)
        try:
            result = self._execute(
                exp.sweep_id,
                exp.project,
                exp.parameters,
                self._progress(exp.sweep_id, exp.experiment_id),
                exp.seed,
            )
        finally:
            if hold:
                self.leases.drop(exp.sweep_id, exp.index)
        return result.model_copy(update=_bookkeeping(exp, attempt, host))

    def _settle(self, exp: Experiment, result: ExperimentResult, token: str, defer: bool = False) -> Any:
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
        record = Record(exp.index, exp.experiment_id, row, result.status.value, True, token, result.cost)
        pruning = self._pruning.get(sweep_id)
        curve = result.extra.get("intermediate")
        if curve and pruning is not None and pruning.rule is not None:
            st.forget_curve(sweep_id, exp.experiment_id)  # finished: no longer a partial
            if result.status == ExperimentStatus.COMPLETED:  # the curve the next runs are judged by
                entries = pruning.rule.completed_entries(curve, sign=pruning.sign)
                steps = len(finite_values(curve))
                st.pruning().add_completed(sweep_id, exp.experiment_id, entries, steps)
        if defer:
            return record
        st.record_many(sweep_id, [record])
        return result.status.value

    def _given_up(
        self, exp: Experiment, attempt: int, host: str, token: str, *, managed: bool = False
    ) -> Record:
        what = (
            "the worker preparing its quantum task was lost each time (killed, out of memory?) before "
            "the task was submitted: no task of it is open and nothing was paid for it; check the "
            "workers' logs"
            if managed
            else "the worker running it was lost each time (killed, out of memory?); check the "
            "project's memory use and the workers' logs"
        )
        result = ExperimentResult(
            parameters=exp.parameters,
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
        self._low_shot_rung(exp, result, row)
        return "partial"

    def _low_shot_rung(self, exp: Experiment, result: ExperimentResult, row: dict[str, Any]) -> None:
        """Shots as a budget: judge the low-shot run among its peers now, not at the next refit.

        Once the rung holds ``min_completed`` low-shot runs, the best ``1/reduction_factor`` of
        them go on to full shots and the rest stop (under the share cap); a run whose optimistic
        bound cannot beat the incumbent the refit published stops at once.
        """
        pruning = self._pruning.get(exp.sweep_id)
        value = result.metrics.get(pruning.metric) if pruning is not None else None
        if pruning is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            return  # the refit decides (it needs a model for what the rung cannot compare)
        es, signed = pruning.options, pruning.sign * float(value)
        variance = shot_noise_variance(result.metrics, result.extra, pruning.metric)
        optimistic = None if variance is None else signed - es.promotion_beta * math.sqrt(variance)
        store = self.state.pruning()
        shots, fraction = result.extra.get("shots"), exp.shot_fraction or 1.0
        saved = shots / fraction - shots if isinstance(shots, (int, float)) and fraction > 0 else 0.0
        store.keep_low_shot_row(exp.sweep_id, exp.index, row, saved)
        promoted, stopped = store.low_shot_rung(
            exp.sweep_id,
            exp.resource,
            exp.index,
            value=signed,
            optimistic=optimistic,
            min_count=es.min_completed,
            eta=es.reduction_factor,
            max_share=es.max_stopped_share,
        )
        for index in stopped:
            self._stop_low_shot(exp.sweep_id, index, es.reduction_factor)
        if promoted or stopped:
            log.info("sweep %s: low-shot rung promoted %s, stopped %s", exp.sweep_id, promoted, stopped)

    def _stop_low_shot(self, sweep_id: str, index: int, eta: int) -> None:
        """Write the stopped row of a low-shot run the rung stopped (it keeps its low-shot metrics)."""
        row = self.state.pruning().low_shot_row(sweep_id, index)
        if row is None:
            return
        share = json.loads(row.get("extra") or "{}").get("shot_fraction", 0)
        row = {
            **row,
            "status": ExperimentStatus.EARLY_STOPPED.value,
            "error_message": f"stopped at {share:.0%} of its shots (not in the best 1/{eta} of its rung)",
        }
        self.state.record(sweep_id, index, row["experiment_id"], row, status="early_stopped", final=True)
        self.state.optimizer().set_stage(sweep_id, index, "stopped")

    def _device_of(self, sweep_id: str, project: str) -> str | None:
        try:
            return self.project_spec(sweep_id, project).device
        except Exception:  # noqa: BLE001 - _execute records the reason
            return None

    def poll(self, task: Any, message: PollMessage) -> str:
        """A poll step of a managed quantum task (see :mod:`workers.managed`)."""
        exp = message.experiment
        return self.managed.poll(task, self.project_spec(exp.sweep_id, exp.project), message)

    def _progress(self, sweep_id: str, experiment_id: str) -> Progress:
        """The ``report`` a project gets: each value is judged at once by the sweep's rule against
        every worker's completed curves (one atomic round trip to the store, which also holds the
        share cap), so a run stops at the report where the rule fires. The curve itself is
        uploaded (for ``status`` and the refit, which may ask a run to stop too) at most every
        ``REPORT_SECONDS``."""
        pruning = self._pruning.get(sweep_id)
        if pruning is None or pruning.rule is None:
            return Progress()
        st, rule, last = self.state, pruning.rule, [-math.inf]
        store = st.pruning()

        def should_stop(curve: list[float]) -> bool:
            now = time.monotonic()
            if now - last[0] >= REPORT_SECONDS:
                last[0] = now
                if st.report_curve(sweep_id, experiment_id, curve):  # the refit asked (it held the cap)
                    store.try_stop(sweep_id, experiment_id, 1.0, rule="refit", step=len(finite_values(curve)))
                    return True
            query = rule.at_report(curve, sign=pruning.sign)
            if query is None:
                return False
            verdict = store.judge(
                sweep_id,
                experiment_id,
                kind=query.kind,
                key=query.key,
                value=query.value,
                min_count=query.min_count,
                quantile=query.quantile,
                eta=query.eta,
                max_share=pruning.options.max_stopped_share,
                rule=rule.name,
                step=len(finite_values(curve)),
            )
            return verdict == 1

        return Progress(pruning.metric, should_stop, rule=rule.name)

    def _backoff(self, retries: int) -> float:
        """Exponential backoff with full jitter, kept well below the visibility timeout."""
        cap = min(self.settings.retry_backoff_max, self.settings.visibility_timeout / 4)
        return random.uniform(0, min(cap, self.settings.retry_backoff * 2**retries))


def _bookkeeping(exp: Experiment, attempt: int, host: str) -> dict[str, Any]:
    """The result fields a worker fills from the message: where, how and what was run."""
    return {
        "experiment_id": exp.experiment_id,
        "project_name": exp.project,
        "sweep_id": exp.sweep_id,
        "index": exp.index,
        "repeat": exp.repeat,
        "added": exp.added,
        "attempt": attempt,
        "worker_host": host,
        "resource": exp.resource,
        "reproducibility_hash": exp.reproducibility_hash,
        "seed": exp.seed,
    }
