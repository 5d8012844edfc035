"""The report of a finished sweep (``analysis.on_sweep_completed``), drawn off the coordinator's
loop: in a thread, and by default in a report process at a lower priority, kept between reports.

Every final state has its report, and first its ``outcome.json`` (how the sweep ended and why),
so a cancelled or timed-out sweep's report says so: the analysis reads only the results folder.

Not a daemon thread, and waited for (:meth:`Reports.wait`) before the process exits, so a
process that exits right after its sweep completes (``orchestrator run``) still writes it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import select
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

from core.protocol import Lifecycle
from core.results import OUTCOME_FILE, ResultStore

log = logging.getLogger(__name__)

REPORT_NICENESS = 19  # a completed sweep's report yields the CPU to experiments (see Reporter)
REPORTER_IDLE_SECONDS = 60.0  # a report process with nothing to do for this long exits


class Reports:
    """The reports a coordinator is writing, by sweep.

    Args:
        store: the results whose completed sweeps are reported.
    """

    def __init__(self, store: ResultStore) -> None:
        self.store = store
        #: draw reports in this process (``orchestrator run``, which exits once its one sweep is
        #: reported, so nothing waits on the CPU it takes); otherwise in a process of their own
        self.inline = False
        #: the report thread of each sweep, until :meth:`wait` sees it end
        self.threads: dict[str, threading.Thread] = {}
        self.reporter = Reporter()

    def start(self, sweep_id: str, outcome: Mapping[str, Any] | None = None) -> None:
        """Start writing the finished sweep's report and analysis, unless they are up to date.

        In a thread: a large sweep's report takes seconds and the other sweeps must not wait
        for it. ``outcome`` (:func:`sweep_outcome`) is stored first, when it changed.
        """
        if outcome is not None:
            self._store_outcome(sweep_id, outcome)
        if self.store.report_current(sweep_id):
            log.info("sweep %s: its report is up to date", sweep_id)
            return
        write = _write_report_inline if self.inline else self.reporter.write
        thread = threading.Thread(target=write, args=(self.store.root, sweep_id), name=f"report-{sweep_id}")
        thread.start()
        self.threads = {sid: t for sid, t in self.threads.items() if t.is_alive()}  # a long-lived coordinator
        self.threads[sweep_id] = thread

    def _store_outcome(self, sweep_id: str, outcome: Mapping[str, Any]) -> None:
        try:
            if json.loads(self.store.read_text(sweep_id, OUTCOME_FILE) or "null") == outcome:
                return  # unchanged (a rerun that reused every result): the report stays current
            self.store.write_text(sweep_id, OUTCOME_FILE, json.dumps(outcome, indent=2))
        except (OSError, ValueError):  # the results matter more than their report
            log.exception("sweep %s: its outcome was not stored", sweep_id)

    def wait(self, sweep_id: str | None = None, timeout: float | None = None) -> None:
        """Wait for the reports being written (of ``sweep_id``, or all), so none is lost on exit."""
        for sid, thread in list(self.threads.items()):
            if sweep_id in (None, sid):
                thread.join(timeout)
                if not thread.is_alive():
                    self.threads.pop(sid, None)

    def close(self) -> None:
        """Wait for every report, then end the report process."""
        self.wait()
        self.reporter.close()


def sweep_outcome(final: Lifecycle, meta: Mapping[str, str], config: Any) -> dict[str, Any]:
    """How a sweep ended, for its report: ``state``, ``reason``, ``total`` (experiments after
    constraints), ``never_started`` and the limits that apply (``max_experiments``,
    ``max_duration_seconds``).

    Args:
        final: the final state.
        meta: the sweep's ``meta`` hash (``SweepState.meta``), read as it closes.
        config: its :class:`~core.config.SweepConfiguration`.
    """
    never = int(meta.get("n_cancelled") or 0)
    limit = config.max_experiments
    duration = config.max_duration.total_seconds() if config.max_duration else None
    if final == Lifecycle.TIMED_OUT:
        reason = f"max_duration ({duration:g} s) reached: no new experiment started after it"
    elif final == Lifecycle.CANCELLED:
        reason = "cancelled by a user (orchestrator cancel, the API or the dashboard)"
    elif never and limit:
        reason = f"max_experiments ({limit}) ran; the rest of the design was not run"
    else:
        reason = "every planned experiment finished"
    return {
        "state": final.value,
        "reason": reason,
        "total": int(meta["total"]) if meta.get("total") else None,
        "never_started": never,
        "max_experiments": limit,
        "max_duration_seconds": duration,
    }


def _write_report_inline(results_dir: str, sweep_id: str) -> None:
    from analysis.publish import on_sweep_completed  # SciPy and matplotlib: in the thread, not the loop

    on_sweep_completed(results_dir, sweep_id)


class Reporter:
    """A report process, niced, that writes reports one at a time and is kept between them.

    Drawing a large sweep's report takes seconds of CPU. In the coordinator's own process it held
    the GIL from the coordinator's loop and, on a small machine, the CPU from the workers: the
    next sweep's 10-ms experiments ran at 0.86 utilization while it drew, 0.93 without
    (``benchmarks/peers.py``). Experiments come first; the report follows. A fresh interpreter per
    report also imported the analysis (pandas, SciPy, matplotlib) each time: 1.4 s of CPU, most
    of a small sweep's report, so the process stays for the next one and exits once idle for
    ``idle`` seconds (its imports hold ~250 MB), or when the coordinator goes (end of its input).

    Args:
        idle: seconds without a report after which the process exits.
    """

    def __init__(self, idle: float = REPORTER_IDLE_SECONDS) -> None:
        self.idle = idle
        self.started = 0  # report processes started (each imports the analysis once)
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()  # one report at a time: one request in the pipe

    def write(self, results_dir: str, sweep_id: str) -> None:
        """Write the sweep's report (in the report process) and wait for it; a failure is logged."""
        with self._lock:
            for _ in range(2):  # a process that exited (idle, killed) as the request came: a new one
                process = self._process if self._process and self._process.poll() is None else self._start()
                try:
                    assert process.stdin is not None and process.stdout is not None
                    process.stdin.write(json.dumps([str(results_dir), sweep_id]) + "\n")
                    process.stdin.flush()
                    reply = process.stdout.readline()
                except OSError:
                    reply = ""
                if reply:
                    written, problems = json.loads(reply)
                    if not written:
                        log.warning("the report of sweep %s was not written: %s", sweep_id, problems)
                    return
                self._end()
            log.warning("the report of sweep %s was not written: its report process ended", sweep_id)

    def close(self) -> None:
        with self._lock:
            self._end()

    def _start(self) -> subprocess.Popen[str]:
        self._process = subprocess.Popen(
            [sys.executable, "-c", f"from orchestrator.reports import serve; serve({self.idle!r})"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # its problems come back with each reply
            text=True,
        )
        self.started += 1
        return self._process

    def _end(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.close()  # the end of its input: it exits
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(idle: float) -> None:
    """The report process (see :class:`Reporter`): a ``[results_dir, sweep_id]`` line in, a
    ``[written, problems]`` line out, until its input ends or ``idle`` seconds pass without one.
    Only one request is ever in flight, so nothing waits in the input's buffer unseen."""
    os.nice(REPORT_NICENESS)
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what the analysis prints does not mix with the replies
    problems = io.StringIO()
    handler = logging.StreamHandler(problems)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    from analysis.publish import on_sweep_completed

    while select.select([sys.stdin], [], [], idle)[0]:
        line = sys.stdin.readline()
        if not line:
            return
        results_dir, sweep_id = json.loads(line)
        problems.seek(0)
        problems.truncate()
        written = on_sweep_completed(results_dir, sweep_id) is not None  # never raises
        replies.write(json.dumps([written, problems.getvalue()[-2000:]]) + "\n")
        replies.flush()
