"""The report of a finished sweep (``analysis.on_sweep_completed``), drawn off the coordinator's
loop: in a thread, and by default in a process of its own at a lower priority.

Every final state has its report, and first its ``outcome.json`` (how the sweep ended and why),
so a cancelled or timed-out sweep's report says so: the analysis reads only the results folder.

Not a daemon thread, and waited for (:meth:`Reports.wait`) before the process exits, so a
process that exits right after its sweep completes (``orchestrator run``) still writes it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

from core.protocol import Lifecycle
from core.results import OUTCOME_FILE, ResultStore

log = logging.getLogger(__name__)

REPORT_NICENESS = 19  # a completed sweep's report yields the CPU to experiments (see _write_report)

# The analysis of a completed sweep, run by a fresh interpreter at a lower priority.
_REPORT_SCRIPT = (
    "import os, sys\n"
    f"os.nice({REPORT_NICENESS})\n"
    "from analysis.publish import on_sweep_completed\n"
    "sys.exit(0 if on_sweep_completed(sys.argv[1], sys.argv[2]) else 1)\n"
)


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
        write = _write_report_inline if self.inline else _write_report
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


def _write_report(results_dir: str, sweep_id: str) -> None:
    """Write the report in a process of its own, at a lower priority, and wait for it.

    Drawing a large sweep's report takes seconds of CPU. In the coordinator's own process it held
    the GIL from the coordinator's loop and, on a small machine, the CPU from the workers: the
    next sweep's 10-ms experiments ran at 0.86 utilization while it drew, 0.93 without
    (``benchmarks/peers.py``). Experiments come first; the report follows.
    """
    done = subprocess.run(
        [sys.executable, "-c", _REPORT_SCRIPT, str(results_dir), sweep_id],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        log.warning("the report of sweep %s was not written: %s", sweep_id, done.stderr[-2000:])
