"""The Python API: ``Orchestrator(broker_url=None)``, usable from a shell while sweeps run.

Embedded (no broker URL): starts a private Redis and local workers, and coordinates in a
background thread. With a broker URL: only coordinates (workers run elsewhere, started with
``orchestrator worker``); ``coordinate=False`` just submits and observes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.config import SweepConfiguration
from core.errors import BrokerUnavailable, OrchestratorError
from core.results import ResultStore
from core.settings import Settings, load_settings
from orchestrator.coordinator import Coordinator
from orchestrator.dispatch import Dispatcher, celery_app
from orchestrator.scheduler import ExecutionStatus, Scheduler, SweepExecution
from orchestrator.store import SweepState
from orchestrator.validation import ValidatedSweep, validate

if TYPE_CHECKING:
    from analysis.publish import Format
    from orchestrator.embedded import EmbeddedRedis, LocalWorkers

log = logging.getLogger(__name__)

SweepLike = SweepConfiguration | str | Path | dict[str, Any]


def check_broker(url: str) -> SweepState:
    """Connect and ping, or raise ``BrokerUnavailable`` (exit code 2) without the password."""
    state = SweepState.from_url(url)
    if not state.ping():
        raise BrokerUnavailable(
            f"cannot reach the broker at {redact(url)}; start Redis there, "
            f"fix --broker / ORCHESTRATOR_BROKER_URL, or omit it to run embedded",
            field="broker_url",
        )
    return state


def redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


class Orchestrator:
    """Submit sweeps, watch them and read their results.

    Args:
        broker_url: a Redis URL shared with the workers; ``None`` runs everything embedded.
        coordinate: run a coordinator in a background thread of this process.
        workers: embedded worker processes' concurrency (default: CPU count).
        start_workers: start the embedded workers now; else at :meth:`start_workers`.
        server, local_workers: an embedded Redis launched and workers started already (see
            :func:`orchestrator.embedded.launch_early`), adopted and stopped by :meth:`close`.
        **settings: any :class:`~core.settings.Settings` field (e.g. ``results_dir``).
    """

    def __init__(
        self,
        broker_url: str | None = None,
        *,
        coordinate: bool = True,
        workers: int | None = None,
        start_workers: bool = True,
        settings: Settings | None = None,
        server: EmbeddedRedis | None = None,
        local_workers: LocalWorkers | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = settings or load_settings(broker_url=broker_url, **overrides)
        self._embedded: EmbeddedRedis | None = None
        self._workers: LocalWorkers | None = local_workers  # started already (see embedded.launch_early)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        if self.settings.embedded:
            from orchestrator.embedded import EmbeddedRedis

            self._embedded = (server or EmbeddedRedis(self.settings.state_dir).launch()).wait_ready()
            self.settings = self.settings.model_copy(update={"broker_url": self._embedded.url})
        url = str(self.settings.broker_url)
        self.state = check_broker(url)
        self.store = ResultStore(self.settings.results_dir, self.settings.compact_after_files)
        self.scheduler = Scheduler(self.state, self.store, self.settings)
        self.app = celery_app(self.settings)  # the coordinator only sends: no tasks, no `workers` import
        self._concurrency = workers or self.settings.worker_concurrency or os.cpu_count() or 2
        self.window = 2 * self._concurrency if self._embedded is not None else None
        if start_workers:
            self.start_workers()
        self.coordinator = self._make_coordinator()
        if self._embedded is not None:
            self.coordinator.on_outage = self._revive_broker
        if coordinate:
            self._thread = threading.Thread(target=self._coordinate, name="coordinator", daemon=True)
            self._thread.start()

    def start_workers(self, execution_id: str | None = None) -> None:
        """Start the embedded worker processes, once; nothing to do with a broker URL.

        ``orchestrator run`` calls it only when its sweep has something to run (a rerun whose
        results are all reused starts none), naming the sweep so that the workers import its
        projects' modules before they fork.
        """
        if self._embedded is None or self._workers is not None:
            return
        from orchestrator.embedded import QUEUES, LocalWorkers

        self._workers = LocalWorkers(
            str(self.settings.broker_url),
            QUEUES,
            self._concurrency,
            Path(self.settings.state_dir) / "logs",
            preload=self._project_imports(execution_id) if execution_id else None,
        ).start()

    def _project_imports(self, execution_id: str) -> list[str]:
        from orchestrator.embedded import project_imports

        raw = self.state.config_json(execution_id)
        return project_imports(SweepConfiguration.model_validate_json(raw)) if raw else []

    def stop_workers(self) -> None:
        """Ask the embedded workers to stop without waiting (:meth:`close` waits for them)."""
        if self._workers is not None:
            self._workers.signal_stop()

    def _revive_broker(self) -> None:
        """The private Redis died (killed, out of memory): start it again from its append-only file."""
        server = self._embedded
        if server is not None and server.process is not None and server.process.poll() is not None:
            log.warning("the embedded Redis exited; restarting it from its append-only file")
            server.process = None
            server.start()

    @property
    def embedded(self) -> bool:
        """True if this process started the broker (and the workers) itself."""
        return self._embedded is not None

    def _make_coordinator(self) -> Coordinator:

        return Coordinator(self.state, self.store, Dispatcher(self.app), self.settings, window=self.window)

    def _coordinate(self) -> None:
        while not self._stop.is_set():
            try:
                self.coordinator.run_until(self._stop.is_set)
            except Exception:  # noqa: BLE001 - keep coordinating after a transient Redis error
                log.exception("coordinator error; retrying")
                time.sleep(1)

    # -- the seed's operations ------------------------------------------------------------------

    def submit(self, sweep: SweepLike | ValidatedSweep) -> SweepExecution:
        """Validate (see :mod:`orchestrator.validation`) and schedule a sweep; returns at once.

        Raises:
            InputError: bad input, naming the file, the field and the fix; nothing is written.
        """
        validated = validate(sweep, self.settings)
        return self.scheduler.schedule_sweep(validated.config, validated.code)

    def estimate(self, sweep: SweepLike) -> Any:
        """Validate the sweep and return its cost estimate (``CostEstimate``), itemized per device."""
        return validate(sweep, self.settings).estimate

    schedule_sweep = submit

    def status(self, execution_id: str) -> ExecutionStatus:
        return self.scheduler.get_execution_status(execution_id)

    get_execution_status = status

    def pause(self, execution_id: str) -> bool:
        return self.scheduler.pause_execution(execution_id)

    def resume(self, execution_id: str) -> bool:
        return self.scheduler.resume_execution(execution_id)

    def cancel(self, execution_id: str) -> bool:
        return self.scheduler.cancel_execution(execution_id)

    pause_execution, resume_execution, cancel_execution = pause, resume, cancel

    def results(self, execution_id: str) -> pd.DataFrame:
        """Rows written so far (partial while the sweep runs).

        Raises:
            InputError: the results store holds no such sweep (as ``orchestrator results`` says).
        """
        self.store.require(execution_id)
        return self.store.load(execution_id)

    def violations(self, execution_id: str) -> pd.DataFrame:
        """Rows whose ``validation`` verdict is a violation (a metric outside its bounds), so far."""
        frame = self.results(execution_id)
        if "validation" not in frame:
            return frame.iloc[0:0]
        return frame[frame["validation"].fillna("").astype(str).str.startswith("violation")]

    def report(
        self,
        execution_id: str,
        fmt: Format = "html",
        output: str | Path | None = None,
        **options: Any,
    ) -> str:
        """Analyse a sweep's results and write its report (no broker needed: results only).

        Args:
            execution_id: the sweep.
            fmt: ``html`` (self-contained), ``json`` (the documented schema) or ``md``.
            output: a local file (default: ``report.html`` / ``analysis.json`` / ``report.md``
                beside the sweep's results, local or on S3).
            **options: for :func:`analysis.analyze` (``confidence``, ``interval``, ``test``).

        Returns:
            Where it was written: a local path or an ``s3://`` URI.

        Raises:
            InputError: no results for ``execution_id``, an unknown format, or a path that
                cannot be written; nothing is written then.
        """
        from analysis.publish import write_report

        return write_report(self.settings.results_dir, execution_id, fmt, output, **options)

    def wait(self, execution_id: str, timeout: float | None = None, poll: float = 0.2) -> ExecutionStatus:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(execution_id)
            if status.done:
                if self.coordinator.reports.threads:  # this process writes its report: part of finishing
                    self.coordinator.reports.wait(execution_id)
                    status = self.status(execution_id)
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"sweep {execution_id} still {status.state} after {timeout} s")
            time.sleep(poll)

    def run(self, sweep: SweepLike, timeout: float | None = None) -> ExecutionStatus:
        """Submit and wait until the sweep is finished."""
        if self._thread is None:
            raise OrchestratorError("run() needs coordinate=True")
        return self.wait(self.submit(sweep).execution_id, timeout)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.coordinator.release()
        if self._workers is not None:
            self._workers.stop()
        if self._embedded is not None:
            self._embedded.stop()

    def __enter__(self) -> Orchestrator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_results(sweep_id: str, results_dir: str | Path | None = None) -> pd.DataFrame:
    """Read a sweep's results from the Parquet dataset, a local folder or ``s3://bucket/prefix``
    (no broker needed).

    Raises:
        InputError: the store holds no such sweep: a wrong id, or another results folder (the
            same message as ``orchestrator results``).
    """
    store = ResultStore(results_dir or load_settings().results_dir)
    store.require(sweep_id)
    return store.load(sweep_id)
