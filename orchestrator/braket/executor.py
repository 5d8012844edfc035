"""Managed Braket devices (SV1, DM1, QPUs): submit once, then poll; never wait on a QPU queue.

The Celery side calls three plain methods:

1. :meth:`BraketManagedExecutor.submit` in a short task: validates (``InputError`` before anything
   is sent), picks the device (failing over when the requested one is offline or outside its
   window), reserves the estimated cost in the :class:`BudgetLedger`, takes a token from the
   global bucket and calls CreateQuantumTask with a ``clientToken`` derived from experiment id,
   attempt and device. Redelivered with the same attempt, it returns the same task ARN.
2. :meth:`BraketManagedExecutor.poll` in a short task that retries itself with a countdown until
   :attr:`PollOutcome.terminal`; on COMPLETED it fetches ``results.json`` from S3, prices the
   billed shots / duration with the price table and settles the reservation to that cost.
3. :meth:`BraketManagedExecutor.cancel_sweep` when a sweep is cancelled.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from braket.aws import AwsDevice, AwsQuantumTask, AwsSession

from adapters.simulator import as_task_spec, circuit_needs, run_local
from core.errors import ConfigurationError, InputError, TransientError
from core.models import Experiment, ExperimentResult
from orchestrator.braket.aws import braket_session, device_region
from orchestrator.braket.catalog import DeviceCatalog, DeviceInfo
from orchestrator.braket.devices import estimate_simulator_seconds, incompatibility
from orchestrator.braket.limits import ServiceLimits, enforce_shots
from orchestrator.braket.prices import PriceTable, load_price_table
from orchestrator.braket.programs import CircuitSource, IExperimentExecutor, Program, shots_of
from orchestrator.braket.results import (
    TERMINAL,
    BilledUsage,
    PollOutcome,
    Submission,
    local_outcome,
    to_result,
)
from orchestrator.braket.retry import DeviceUnavailable, RetryPolicy, error_code
from orchestrator.braket.submissions import client_token, install_token_handler, sending_token
from orchestrator.store.budget import BudgetAlert, BudgetLedger
from orchestrator.store.slots import ConcurrencyGate
from orchestrator.store.submissions import SubmissionRecord, SubmissionStore
from orchestrator.store.throttle import TokenBucket

if TYPE_CHECKING:
    import redis

LOCAL_TASK_PREFIX = "local-task/"


class BraketManagedExecutor(IExperimentExecutor):
    """Runs circuit experiments on managed Braket devices, idempotently and within budget.

    Args:
        client: Redis shared by all workers (budgets, bucket, submission records).
        s3_bucket: bucket Braket writes results to.
        s3_prefix: key prefix of results in the bucket.
        prefix: the deployment's Redis key prefix.
        source: the circuit project's ``build``/``analyze`` (needed by :meth:`execute` only).
        prices: price table (default: shipped or ``$ORCHESTRATOR_PRICE_TABLE``).
        limits: service limits (rate, concurrent simulator tasks, shots caps).
        failover: device -> alternatives in order of preference (ARNs, or ``local:sv``/``local:dm``
            when the sweep allows local work).
        budget: the ledger (default: one on ``client`` under ``prefix``).
        catalog: device metadata cache.
        retry: in-process retry policy for throttling and 5xx.
        throttle: the CreateQuantumTask bucket to draw from (default: one shared bucket per region in
            Redis at ``limits.create_task_rate``; benchmarks pass a private one to compare).
        throttle_timeout: seconds to wait for a token before giving the step back to Celery.
        shots_param / default_shots: where an experiment's shots are.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        s3_bucket: str,
        s3_prefix: str = "orchestrator/tasks",
        prefix: str = "orch:",
        source: CircuitSource | None = None,
        prices: PriceTable | None = None,
        limits: ServiceLimits | None = None,
        failover: Mapping[str, Sequence[str]] | None = None,
        budget: BudgetLedger | None = None,
        catalog: DeviceCatalog | None = None,
        retry: RetryPolicy | None = None,
        throttle: TokenBucket | None = None,
        throttle_timeout: float = 10.0,
        shots_param: str = "shots",
        default_shots: int = 1000,
    ) -> None:
        self.client, self.prefix, self.source = client, prefix, source
        self.s3_bucket, self.s3_prefix = s3_bucket, s3_prefix.strip("/")
        self.prices = prices or load_price_table()
        self.limits = limits or ServiceLimits()
        self.failover = {k: tuple(v) for k, v in (failover or {}).items()}
        self.budget = budget or BudgetLedger(client, prefix=prefix)
        self.catalog = catalog or DeviceCatalog()
        self.retry = retry or RetryPolicy()
        self.throttle_timeout = throttle_timeout
        self.shots_param, self.default_shots = shots_param, default_shots
        self.store = SubmissionStore(client, prefix=prefix)
        self.gate = ConcurrencyGate(client, self.limits, prefix=prefix)
        #: per-process counters: creates, retries by error code, local throttle waits (for benchmarks)
        self.stats: Counter[str] = Counter()
        self._devices: dict[str, AwsDevice] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._throttle = throttle
        self._lock = threading.Lock()

    # -- validation -------------------------------------------------------------------------------

    def connect(self, device: str) -> DeviceInfo:
        """Fetch ``device`` and open its connections now (at worker start), not on the first submit."""
        info = self.catalog.get(device)
        if not info.is_local:
            self._aws_device(device)
        return info

    def reachable(self, device: str) -> bool:
        """One cheap call (GetDevice, no retries): does Braket answer for ``device``'s region now?"""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            braket_session(device_region(device)).braket_client.get_device(deviceArn=device)
        except ClientError:
            return True  # it answered, if only to refuse
        except (BotoCoreError, OSError):
            return False
        return True

    def validate(
        self, program: Program, shots: int, device: str, *, budget: float | None = None
    ) -> DeviceInfo:
        """Check a task before anything is submitted.

        Raises:
            InputError: unknown device ARN, shots outside the device's range, a circuit wider than
                the device (or using gates / noise it cannot run), a negative budget, or a budget
                below the cost of this task.
        """
        if budget is not None and budget < 0:
            raise InputError(f"budget must be >= 0 USD, got {budget}", field="budget_limit")
        spec, _ = as_task_spec(program)
        info = self.catalog.get(device)
        enforce_shots(info, shots, self.limits)
        needs = circuit_needs(spec)
        problem = incompatibility(info, needs, shots)
        if problem:
            raise InputError(f"{info.name} cannot run this circuit: {problem}", field="device")
        cheapest = self.prices.price_for(device).cost(shots, 0.0)
        if budget is not None and cheapest > budget:
            raise InputError(
                f"budget ${budget:.4f} is below the cheapest task on {info.name} (${cheapest:.4f} for "
                f"{shots} shots); raise the budget or lower the shots",
                field="budget_limit",
            )
        return info

    # -- submit -----------------------------------------------------------------------------------

    def submit(
        self,
        experiment: Experiment,
        program: Program,
        shots: int,
        attempt: int,
        *,
        inputs: dict[str, float] | None = None,
    ) -> Submission:
        """Create the quantum task for one attempt of ``experiment`` (idempotent per attempt).

        Raises:
            InputError: see :meth:`validate`; nothing was submitted.
            BudgetExceeded: the task would overspend a budget; nothing was submitted.
            DeviceUnavailable: the device and every configured alternative cannot take it now.
            TransientError: throttling/5xx persisted, or the concurrency quota is full; retry
                later with the *same* attempt (never a second paid task).
            ConfigurationError: credentials, permissions, or a request Braket rejects.
        """
        # A task that FAILED or was CANCELLED under this attempt is never the result: its attempt
        # (and token) is spent, the next one is tried.
        attempt, record = self.store.live(experiment.experiment_id, attempt)
        if record and record.task_arn:
            return Submission.from_record(record, duplicate=True)
        if not experiment.device:
            raise InputError(f"experiment {experiment.experiment_id} has no device", field="device")
        spec, inputs = as_task_spec(program, inputs)
        self.validate(spec, shots, experiment.device)
        needs = circuit_needs(spec)
        # A device named in an earlier intent goes first: a task may already exist under its token.
        sticky = record.device if record else None
        chain = [experiment.device, *self.failover.get(experiment.device, ())]
        if sticky:
            chain = [sticky, *(d for d in chain if d != sticky)]
        reasons: list[str] = []
        for device in chain:
            why = None if device == sticky else self._cannot_take(device, needs, shots)
            if why:
                reasons.append(why)
                continue
            try:
                return self._submit_to(experiment, spec, inputs, needs, shots, attempt, device, reasons)
            except DeviceUnavailable as exc:
                reasons.append(f"{device}: {exc}")
                self.catalog.invalidate(device)
        raise DeviceUnavailable(
            f"{experiment.device} cannot take the task now and no configured alternative can "
            f"({'; '.join(reasons)}); paid work stays queued until it is back, or configure "
            f"a failover device"
        )

    def _cannot_take(self, device: str, needs: Any, shots: int) -> str | None:
        try:
            info = self.catalog.get(device)
        except InputError as exc:
            return f"{device}: {exc.message}"
        low, high = self.limits.shots_range(info)
        shots_problem = None if low <= shots <= high else f"{shots} shots outside [{low}, {high}]"
        problem = incompatibility(info, needs, shots) or shots_problem or info.unavailable_reason()
        return f"{device}: {problem}" if problem else None

    def _estimate(self, device: str, needs: Any, shots: int) -> float:
        """The likely cost of a task (estimates); see :meth:`_bound` for what is reserved."""
        seconds = estimate_simulator_seconds(needs, shots) if "quantum-simulator" in device else None
        return self.prices.task_cost(device, shots, seconds)

    def _bound(self, device: str, needs: Any, shots: int) -> float:
        """What a task may cost at most: the amount reserved before it is submitted.

        QPUs bill per task and shot, known before submission. Simulators bill per second of
        simulation, known only afterwards: the reservation is the cost of
        ``limits.max_task_seconds`` (or the estimated run time, if longer), and :meth:`poll`
        cancels a task that runs longer than that, so the bill stays within what was reserved.
        """
        if self.prices.price_for(device).kind != "simulator":
            return self.prices.task_cost(device, shots, None)
        return self.prices.task_cost(device, shots, self.task_seconds_bound(needs, shots))

    def task_seconds_bound(self, needs: Any, shots: int) -> float:
        """Seconds a simulator task is allowed to run (and reserved for)."""
        return max(self.limits.max_task_seconds, estimate_simulator_seconds(needs, shots))

    def _submit_to(
        self,
        experiment: Experiment,
        spec: Any,
        inputs: dict[str, float],
        needs: Any,
        shots: int,
        attempt: int,
        device: str,
        reasons: list[str],
    ) -> Submission:
        rid = f"{experiment.experiment_id}:{attempt}"
        previous = self.store.get(experiment.experiment_id, attempt)
        if previous and previous.device != device:  # failing over: give back what the other device held
            self.budget.release(experiment.sweep_id, rid, slot=self.gate.slot_key(previous.device))
        record = SubmissionRecord(
            experiment_id=experiment.experiment_id,
            sweep_id=experiment.sweep_id,
            attempt=attempt,
            requested_device=experiment.device or device,
            device=device,
            client_token=client_token(experiment.experiment_id, attempt, device),
            reservation_id=rid,
            estimated_cost=self._bound(device, needs, shots),
            shots=shots,
            failover_reason="; ".join(reasons) or None,
        )
        self.store.save(record)  # the intent, before any paid call
        if device.startswith("local:"):
            return self._run_locally(record, spec, inputs)
        reservation = self.budget.reserve(experiment.sweep_id, rid, record.estimated_cost)
        if not self.gate.acquire(device, rid):
            self.budget.release(experiment.sweep_id, rid, slot=self.gate.slot_key(device))
            raise TransientError(
                f"concurrent task quota on {device} is full "
                f"({self.limits.concurrency_for(device)}); retry later"
            )
        try:
            arn = self._create(device, spec, inputs, shots, record.client_token)
        except (DeviceUnavailable, ConfigurationError, InputError):
            # Definitely not created: nothing to pay for, nothing to hold.
            self.budget.release(experiment.sweep_id, rid, slot=self.gate.slot_key(device))
            raise
        # Other errors (TransientError) keep the reservation: the task may exist, and the retry
        # with the same token will find it.
        record.task_arn, record.state = arn, "submitted"
        self.store.save(record)
        return Submission.from_record(record, duplicate=False, alerts=reservation.alerts)

    def _run_locally(self, record: SubmissionRecord, spec: Any, inputs: dict[str, float]) -> Submission:
        raw = run_local(spec, record.shots, record.device, inputs=inputs)
        arn = f"{LOCAL_TASK_PREFIX}{record.device}/{record.client_token}"
        self.store.save_local_result(arn, raw.json())
        record.task_arn, record.state, record.estimated_cost = arn, "submitted", 0.0
        self.store.save(record)
        return Submission.from_record(record, duplicate=False)

    def _create(self, device_arn: str, spec: Any, inputs: dict[str, float], shots: int, token: str) -> str:
        aws_device = self._aws_device(device_arn)
        bucket = self._bucket(device_region(device_arn) or aws_device.aws_session.region)
        folder = AwsSession.S3DestinationFolder(self.s3_bucket, self.s3_prefix)

        def once() -> str:
            # Every try asks the shared bucket first: a retry is another call against the quota.
            if not bucket.acquire(timeout=self.throttle_timeout):
                self.stats["local_throttle_timeouts"] += 1
                raise TransientError(
                    f"no CreateQuantumTask slot within {self.throttle_timeout}s; retry later"
                )
            with sending_token(token):
                try:
                    task = aws_device.run(spec, folder, shots=shots, inputs=inputs or None)
                except ValueError as exc:  # the SDK's own checks, before any request
                    raise InputError(f"Braket SDK rejected the task: {exc}", field="circuit") from exc
            self.stats["created"] += 1
            return task.id

        return self.retry.call(
            once,
            f"CreateQuantumTask on {device_arn}",
            on_retry=lambda exc: self.stats.update([f"retried:{error_code(exc) or 'network'}"]),
        )

    def _aws_device(self, arn: str) -> AwsDevice:
        with self._lock:
            device = self._devices.get(arn)
        if device is None:
            session = braket_session(device_region(arn))
            device = self.retry.call(lambda: AwsDevice(arn, aws_session=session), f"GetDevice {arn}")
            install_token_handler(device.aws_session.braket_client)
            with self._lock:
                self._devices[arn] = device
        return device

    def _bucket(self, region: str) -> TokenBucket:
        if self._throttle is not None:
            return self._throttle
        with self._lock:
            bucket = self._buckets.get(region)
            if bucket is None:
                # Burst of one second's worth, half Braket's: jitter between our grant and the
                # service's count never makes a call the 41st of a burst.
                bucket = TokenBucket(
                    self.client,
                    f"CreateQuantumTask:{region}",
                    rate=self.limits.create_task_rate,
                    burst=max(1.0, min(self.limits.create_task_rate, self.limits.create_task_burst)),
                    prefix=self.prefix,
                )
                self._buckets[region] = bucket
            return bucket

    # -- poll and cancel --------------------------------------------------------------------------

    def poll(self, task_arn: str) -> PollOutcome:
        """The task's state; on a terminal state, its result and billed cost (settled in the ledger).

        Raises:
            TransientError: Braket or S3 could not be read now; poll again later.
        """
        record = self.store.by_task(task_arn)
        if task_arn.startswith(LOCAL_TASK_PREFIX):
            return local_outcome(task_arn, record, self.store.local_result(task_arn))
        session = braket_session(task_arn.split(":")[3] or None)
        task = AwsQuantumTask(task_arn, aws_session=session, quiet=True)
        meta = self.retry.call(task.metadata, f"GetQuantumTask {task_arn}")
        state, device = meta["status"], meta["deviceArn"]
        queue = (meta.get("queueInfo") or {}).get("position")
        if state not in TERMINAL:
            self._enforce_time_bound(task_arn, meta, record)
            return PollOutcome(task_arn, state, device, record=record, queue_position=queue)
        if state != "COMPLETED":
            self._release(record, device)
            return PollOutcome(
                task_arn, state, device, record=record, failure_reason=meta.get("failureReason")
            )
        result = self.retry.call(task.result, f"results.json of {task_arn}")
        if result is None:
            raise TransientError(f"results of {task_arn} not readable yet")
        billed = self._billed(device, result)
        alerts: tuple[BudgetAlert, ...] = ()
        if record and record.state != "settled":
            alerts = self.budget.settle(
                record.sweep_id, record.reservation_id, billed.cost, slot=self.gate.slot_key(device)
            )
            record.state, record.cost = "settled", billed.cost
            self.store.save(record)
        return PollOutcome(
            task_arn, state, device, result=result, billed=billed, record=record, alerts=alerts
        )

    def _billed(self, device: str, result: Any) -> BilledUsage:
        shots = int(result.task_metadata.shots)
        sim = getattr(result.additional_metadata, "simulatorMetadata", None)
        duration_ms = int(sim.executionDuration) if sim is not None else None
        cost = self.prices.task_cost(device, shots, None if duration_ms is None else duration_ms / 1000)
        return BilledUsage(shots=shots, duration_ms=duration_ms, cost=cost, price_table=self.prices.version)

    def _release(self, record: SubmissionRecord | None, device: str) -> None:
        """A task that ended without a bill (FAILED, CANCELLED): its money and slot go back, at once."""
        if record and record.state in ("intent", "submitted"):
            self.budget.release(record.sweep_id, record.reservation_id, slot=self.gate.slot_key(device))
            record.state = "released"
            self.store.save(record)

    def _enforce_time_bound(
        self, task_arn: str, meta: dict[str, Any], record: SubmissionRecord | None
    ) -> None:
        """Cancel a simulator task that has been RUNNING longer than its reserved seconds.

        Queue time is not billed; simulation is, and a task cannot simulate for longer than it
        has been running. It was first seen RUNNING at most one poll interval after it started,
        so cancelling it at the bound keeps its bill within the reservation plus one poll interval.
        """
        if record is None or meta.get("status") != "RUNNING":
            return
        price = self.prices.price_for(record.device)
        if price.kind != "simulator":
            return
        if record.running_since is None:
            record.running_since = time.time()
            self.store.save(record)
            return
        bound = self.limits.max_task_seconds
        if record.estimated_cost and price.per_minute:
            bound = max(bound, record.estimated_cost / price.per_minute * 60.0)
        if time.time() - record.running_since > bound:
            self.stats["cancelled_over_time"] += 1
            self.cancel(task_arn)

    def cancel(self, task_arn: str) -> str:
        """Cancel a task (idempotent). Returns CANCELLING/CANCELLED, or the terminal state it already had."""
        if task_arn.startswith(LOCAL_TASK_PREFIX):
            return "COMPLETED"
        session = braket_session(task_arn.split(":")[3] or None)

        def once() -> str:
            return session.braket_client.cancel_quantum_task(quantumTaskArn=task_arn)["cancellationStatus"]

        try:
            return self.retry.call(once, f"CancelQuantumTask {task_arn}")
        except ConfigurationError as exc:
            if isinstance(exc.__cause__, Exception) and error_code(exc.__cause__) == "ConflictException":
                return self.poll(task_arn).state
            raise

    def cancel_sweep(self, sweep_id: str) -> dict[str, str]:
        """Cancel every still-queued quantum task of a sweep; returns task ARN -> state after the call."""
        out: dict[str, str] = {}
        for arn in self.store.sweep_tasks(sweep_id):
            outcome = self.poll(arn)
            out[arn] = self.cancel(arn) if outcome.state in ("CREATED", "QUEUED") else outcome.state
        return out

    # -- the seed's interface ---------------------------------------------------------------------

    def execute(
        self, experiment: Experiment, *, attempt: int = 1, poll_interval: float = 0.5, timeout: float = 3600.0
    ) -> ExperimentResult:
        """Submit and wait, in this process. For demos and simulators; Celery uses submit + poll."""
        if self.source is None:
            raise ConfigurationError("execute() needs a circuit source (build/analyze)")
        started = time.perf_counter()
        params = dict(experiment.parameters)
        shots = shots_of(experiment, shots_param=self.shots_param, default=self.default_shots)
        submission = self.submit(experiment, self.source.build(params), shots, attempt)
        deadline = time.monotonic() + timeout
        while True:
            outcome = self.poll(submission.task_arn)
            if outcome.terminal:
                break
            if time.monotonic() > deadline:
                raise TransientError(f"task {submission.task_arn} still {outcome.state} after {timeout}s")
            time.sleep(poll_interval)
        metrics = self.source.analyze(outcome.result, params) if outcome.result is not None else {}
        return to_result(
            experiment,
            outcome,
            metrics=metrics,
            attempt=attempt,
            execution_time=time.perf_counter() - started,
        )

    def estimate_duration(self, experiment: Experiment) -> timedelta:
        # Queue wait dominates on QPUs; about a minute per task ahead is a deliberately rough guess.
        info = self.catalog.get(experiment.device or "")
        ahead = info.queue_depth or 0
        per_task = 60.0 if info.is_qpu else 5.0
        return timedelta(seconds=per_task * (ahead + 1))

    def estimate_cost(self, experiment: Experiment) -> float:
        shots = shots_of(experiment, shots_param=self.shots_param, default=self.default_shots)
        if self.source is not None:
            needs = circuit_needs(as_task_spec(self.source.build(dict(experiment.parameters)))[0])
            return self._estimate(experiment.device or "", needs, shots)
        return self.prices.task_cost(experiment.device or "", shots, None)
