"""Managed Braket devices (SV1, DM1, QPUs): submit once, then poll; never wait on a QPU queue.

The Celery side calls three plain methods of :class:`BraketManagedExecutor`:

1. :meth:`~BraketManagedExecutor.submit` (:mod:`.submitter`) in a short task: validates
   (``InputError`` before anything is sent), picks the device (failing over when the requested one
   is offline or outside its window), reserves the estimated cost in the budget ledger, takes a
   token from the global bucket and calls CreateQuantumTask with a ``clientToken`` derived from
   experiment id, attempt and device. Redelivered with the same attempt, it returns the same task ARN.
2. :meth:`~BraketManagedExecutor.poll` (:mod:`.poller`) in a short task that retries itself with a
   countdown until :attr:`PollOutcome.terminal`; on COMPLETED it fetches ``results.json`` from S3,
   prices the billed shots / duration with the price table and settles the reservation to that cost.
3. :meth:`~BraketManagedExecutor.cancel_sweep` when a sweep is cancelled.

What it keeps in Redis it asks of :class:`~orchestrator.store.ledgers.BraketLedgers`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import timedelta

from braket.aws import AwsDevice

from adapters.simulator import as_task_spec, circuit_needs
from core.errors import ConfigurationError, TransientError
from core.models import Experiment, ExperimentResult
from orchestrator.braket.aws import braket_session, device_region
from orchestrator.braket.catalog import DeviceCatalog, DeviceInfo
from orchestrator.braket.limits import ServiceLimits
from orchestrator.braket.poller import TaskPoller
from orchestrator.braket.prices import PriceTable, load_price_table
from orchestrator.braket.programs import CircuitSource, IExperimentExecutor, shots_of
from orchestrator.braket.results import LOCAL_TASK_PREFIX, to_result
from orchestrator.braket.retry import RetryPolicy
from orchestrator.braket.submitter import TaskSubmitter
from orchestrator.store.ledgers import BraketLedgers
from orchestrator.store.throttle import TokenBucket

__all__ = ["LOCAL_TASK_PREFIX", "BraketManagedExecutor"]


class BraketManagedExecutor(TaskSubmitter, TaskPoller, IExperimentExecutor):
    """Runs circuit experiments on managed Braket devices, idempotently and within budget.

    Args:
        ledgers: what every worker shares in Redis: budgets, submission records, concurrency
            slots and token buckets.
        s3_bucket: bucket Braket writes results to.
        s3_prefix: key prefix of results in the bucket.
        source: the circuit project's ``build``/``analyze`` (needed by :meth:`execute` only).
        prices: price table (default: shipped or ``$ORCHESTRATOR_PRICE_TABLE``).
        limits: service limits (rate, concurrent simulator tasks, shots caps).
        failover: device -> alternatives in order of preference (ARNs, or ``local:sv``/``local:dm``
            when the sweep allows local work).
        catalog: device metadata cache.
        retry: in-process retry policy for throttling and 5xx.
        throttle: the CreateQuantumTask bucket to draw from (default: one shared bucket per region in
            Redis at ``limits.create_task_rate``; benchmarks pass a private one to compare).
        throttle_timeout: seconds to wait for a token before giving the step back to Celery.
        shots_param / default_shots: where an experiment's shots are.
    """

    def __init__(
        self,
        ledgers: BraketLedgers,
        *,
        s3_bucket: str,
        s3_prefix: str = "orchestrator/tasks",
        source: CircuitSource | None = None,
        prices: PriceTable | None = None,
        limits: ServiceLimits | None = None,
        failover: Mapping[str, Sequence[str]] | None = None,
        catalog: DeviceCatalog | None = None,
        retry: RetryPolicy | None = None,
        throttle: TokenBucket | None = None,
        throttle_timeout: float = 10.0,
        shots_param: str = "shots",
        default_shots: int = 1000,
    ) -> None:
        self.ledgers, self.source = ledgers, source
        self.s3_bucket, self.s3_prefix = s3_bucket, s3_prefix.strip("/")
        self.prices = prices or load_price_table()
        self.limits = limits or ServiceLimits()
        self.failover = {k: tuple(v) for k, v in (failover or {}).items()}
        self.budget = ledgers.budget
        self.catalog = catalog or DeviceCatalog()
        self.retry = retry or RetryPolicy()
        self.throttle_timeout = throttle_timeout
        self.shots_param, self.default_shots = shots_param, default_shots
        self.store = ledgers.submissions
        self.gate = ledgers.slots(self.limits)
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
