"""Submitting a managed quantum task: checked, priced, paid for once, failing over when it must.

A submission validates the task (``InputError`` before anything is sent), picks the device
(failing over when the requested one is offline or outside its window), records its intent,
reserves the estimated cost in the budget ledger, holds a concurrency slot, takes a token from
the shared bucket and calls CreateQuantumTask with a ``clientToken`` derived from experiment id,
attempt and device. Redelivered with the same attempt, it returns the same task ARN.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from braket.aws import AwsDevice, AwsSession

from adapters.simulator import as_task_spec, circuit_needs, run_local
from core.errors import ConfigurationError, InputError, TransientError
from core.models import Experiment
from orchestrator.braket.aws import braket_session, device_region
from orchestrator.braket.catalog import DeviceCatalog, DeviceInfo
from orchestrator.braket.devices import estimate_simulator_seconds, incompatibility
from orchestrator.braket.limits import ServiceLimits, enforce_shots
from orchestrator.braket.prices import PriceTable
from orchestrator.braket.programs import Program
from orchestrator.braket.results import LOCAL_TASK_PREFIX, Submission
from orchestrator.braket.retry import DeviceUnavailable, RetryPolicy, error_code
from orchestrator.braket.submissions import client_token, install_token_handler, sending_token
from orchestrator.store.budget import BudgetLedger, check_limit
from orchestrator.store.ledgers import BraketLedgers
from orchestrator.store.slots import ConcurrencyGate
from orchestrator.store.submissions import SubmissionRecord, SubmissionStore
from orchestrator.store.throttle import TokenBucket


class TaskSubmitter:
    """Validate and submit of :class:`~orchestrator.braket.executor.BraketManagedExecutor`, which
    sets the attributes below."""

    ledgers: BraketLedgers
    store: SubmissionStore
    budget: BudgetLedger
    gate: ConcurrencyGate
    catalog: DeviceCatalog
    limits: ServiceLimits
    prices: PriceTable
    failover: dict[str, tuple[str, ...]]
    retry: RetryPolicy
    stats: Counter[str]
    s3_bucket: str
    s3_prefix: str
    throttle_timeout: float
    _throttle: TokenBucket | None
    _buckets: dict[str, TokenBucket]
    _devices: dict[str, AwsDevice]
    _lock: threading.Lock

    def validate(
        self, program: Program, shots: int, device: str, *, budget: float | None = None
    ) -> DeviceInfo:
        """Check a task before anything is submitted.

        Raises:
            InputError: unknown device ARN, shots outside the device's range, a circuit wider than
                the device (or using gates / noise it cannot run), a negative budget, or a budget
                below the cost of this task.
        """
        check_limit(budget)
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
                bucket = self.ledgers.bucket(
                    f"CreateQuantumTask:{region}",
                    rate=self.limits.create_task_rate,
                    burst=max(1.0, min(self.limits.create_task_rate, self.limits.create_task_burst)),
                )
                self._buckets[region] = bucket
            return bucket
