"""What a worker does with a batch message (``Task.BATCH``): several short experiments of one
sweep and queue, claimed in one script call and recorded in one per chunk.

The coordinator batches only experiments that take a few milliseconds, where Celery's
per-message cost would dominate (see :mod:`orchestrator.pacing`). Each experiment keeps its
exactly-once guarantees (:mod:`workers.runner`): claimed and leased on its own, recorded in
chunks as the batch goes (a killed worker loses at most ``RECORD_SECONDS`` of work, which is run
again on redelivery). The batch's thread only runs projects: a background thread makes each
result (standardized metrics, row, observation) while the next experiment runs, and writes the
chunks. The batch returns (and its message is acked) only once every row is written. Whatever
needs the single path (a lease held elsewhere, a transient error to retry, a managed or
low-shot run) is sent back as a message of its own.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from core.errors import TransientError
from core.models import Experiment, ExperimentResult, ExperimentStatus
from core.project import is_managed
from core.protocol import BatchMessage, Claim, RunMessage, Task
from orchestrator.store import STORE_ERRORS, Record, SweepState
from workers.runner import ExperimentRunner

log = logging.getLogger(__name__)

RECORD_PATIENCE = 30.0  # seconds a batch waits for the broker to come back before giving up on recording
RECORD_SECONDS = 0.25  # a batch writes its rows at least this often: what a killed worker can lose
# ... and sooner whenever its writer is idle, so that the chunk written before the ack (while the
# process runs nothing) is small: the last chunk of a 0.25-s batch of 10-ms runs cost 2.7 ms
RECORD_EAGER_SECONDS = 0.02
_writer: tuple[int, ThreadPoolExecutor] | None = None  # (pid, its thread): made after the fork


def run_batch(runner: ExperimentRunner, task: Any, message: BatchMessage) -> str:
    """Run a batch of short experiments through ``runner``'s steps: one message, one claim, a
    record per chunk; returns a summary for Celery's result."""
    st, sweep_id, queue = runner.state, message.sweep_id, message.queue
    host = task.request.hostname or runner.host
    token = f"{runner.host}:{uuid.uuid4().hex}"
    claims = st.claim_many(
        sweep_id,
        queue,
        [e.index for e in message.experiments],
        token,
        runner.settings.lease_ttl,
        host,
        low_shots={e.index for e in message.experiments if e.shot_fraction},
    )
    claimed: list[tuple[Experiment, int]] = []
    for exp, (outcome, attempt) in zip(message.experiments, claims, strict=True):
        if outcome == Claim.RUN:
            claimed.append((exp, attempt))
        elif outcome == Claim.LEASED:
            _send_single(runner, exp, countdown=runner.settings.lease_ttl)
    indices = [exp.index for exp, _ in claimed]
    runner.leases.hold_many(sweep_id, indices, token)
    settler = _Settler(runner, sweep_id, queue, token)
    try:
        with runner.batch():
            for exp, attempt in claimed:
                if exp.shot_fraction or is_managed(runner.device_of(exp)):
                    # the single path owns the delivery count (and knows a paid task is never given up)
                    st.release(sweep_id, queue, exp.index, token)
                    _send_single(runner, exp)
                elif attempt > runner.settings.max_attempts:
                    settler.records.append(runner.given_up(exp, attempt, host, token))
                else:
                    settler.add(exp, runner.start_claimed(exp, attempt, host))
                settler.collect()
    finally:
        try:
            settler.close()
        finally:
            # Always: a lease kept alive for a batch that has ended would hold its experiments
            # "running" for ever (no orphan requeue touches a leased experiment).
            runner.leases.drop_many(sweep_id, indices)
    return f"batch of {len(message.experiments)}: {len(claimed)} run"


class _Settler:
    """A batch's results, made and written by the process's background thread, in run order.

    After a 10-ms sleep the CPU runs this process's code at a third of its speed (cold caches),
    so making a result while the next experiment runs took a third off the time between runs
    (``benchmarks/peers.py``).
    """

    def __init__(self, runner: ExperimentRunner, sweep_id: str, queue: str, token: str) -> None:
        self.runner, self.sweep_id, self.queue, self.token = runner, sweep_id, queue, token
        self.records: list[Record] = []
        self._making: deque[tuple[Experiment, Future[Record | str | None]]] = deque()
        self._writing: Future[None] | None = None  # the chunk the background thread is writing
        self._flushed = time.monotonic()

    def add(self, exp: Experiment, finish: Callable[[], ExperimentResult]) -> None:
        """Make the result of a run that ended (``finish``) in the background."""
        self._making.append((exp, _background().submit(self._settle, exp, finish)))

    def _settle(self, exp: Experiment, finish: Callable[[], ExperimentResult]) -> Record | str | None:
        result = finish()
        if result.status == ExperimentStatus.FAILED and result.error_class == TransientError.kind:
            return None  # retried on the single path (see collect)
        return self.runner.settle(exp, result, self.token, defer=True)

    def collect(self, wait: bool = False) -> None:
        """Take the results made so far (all of them, with ``wait``); write a chunk when one is due."""
        while self._making and (wait or self._making[0][1].done()):
            exp, making = self._making.popleft()
            record = making.result()
            if record is None:
                self.runner.state.release(self.sweep_id, self.queue, exp.index, self.token)
                _send_single(self.runner, exp, countdown=self.runner.backoff(0))
            elif isinstance(record, Record):
                self.records.append(record)
        waited = time.monotonic() - self._flushed
        idle = self._writing is None or self._writing.done()
        if self.records and (waited >= RECORD_SECONDS or (idle and waited >= RECORD_EAGER_SECONDS)):
            if self._writing is not None:
                self._writing.result()  # one chunk at a time; a chunk that failed ends the batch
            chunk, self.records = self.records, []
            self._writing = _background().submit(_record_durably, self.runner.state, self.sweep_id, chunk)
            self._flushed = time.monotonic()

    def close(self) -> None:
        """Wait for every result and write what is left, even after a failure (then raised)."""
        failure: BaseException | None = None
        while self._making:
            try:
                self.collect(wait=True)
            except BaseException as exc:  # noqa: BLE001 - the other rows are written first
                failure = failure or exc
        try:
            if self._writing is not None:
                self._writing.result()
        finally:
            _record_durably(self.runner.state, self.sweep_id, self.records)
        if failure is not None:
            raise failure


def _record_durably(state: SweepState, sweep_id: str, records: list[Record]) -> None:
    """Record finished rows (if any), waiting out a broker outage of up to ``RECORD_PATIENCE`` seconds:
    the runs are done, and a restarted Redis is back in a second or two. Each row counts
    once however often this is tried (the record script checks the terminal hash)."""
    if not records:
        return
    deadline = time.monotonic() + RECORD_PATIENCE
    delay, warned = 0.1, False
    while True:
        try:
            state.record_many(sweep_id, records)
            return
        except STORE_ERRORS:
            if time.monotonic() + delay > deadline:
                raise
            if not warned:  # once per outage, not per attempt
                log.warning("broker unreachable while recording %d result(s); retrying", len(records))
                warned = True
            time.sleep(delay)
            delay = min(2.0, delay * 2)


def _background() -> ThreadPoolExecutor:
    """This process's record writer (a pool child gets its own after the fork)."""
    global _writer
    if _writer is None or _writer[0] != os.getpid():
        _writer = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="batch-record"))
    return _writer[1]


def _send_single(runner: ExperimentRunner, exp: Experiment, countdown: float = 0) -> None:
    runner.dispatcher.send(Task.RUN, RunMessage(experiment=exp).kwargs(), exp.resource, countdown)
