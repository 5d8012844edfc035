"""The report process a coordinator keeps (``orchestrator.reports.Reporter``): one interpreter
writes report after report, a killed or idle one is replaced, and a report that cannot be
written says why in the coordinator's log."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from core.results import ANALYSIS_FILE, REPORT_FILE
from orchestrator.reports import Reporter
from tests.analysis.conftest import Sweeps


def _copy(sweeps: Sweeps, tmp_path: Path, *sweep_ids: str) -> Path:
    """The sweeps' result folders, without their reports, in a folder of the test's own."""
    results = tmp_path / "results"
    for sweep_id in sweep_ids:
        folder = results / f"sweep={sweep_id}"
        shutil.copytree(sweeps.results / f"sweep={sweep_id}", folder)
        for name in (REPORT_FILE, ANALYSIS_FILE):
            (folder / name).unlink(missing_ok=True)
    return results


def _written(results: Path, sweep_id: str) -> bool:
    folder = results / f"sweep={sweep_id}"
    return (folder / REPORT_FILE).is_file() and (folder / ANALYSIS_FILE).is_file()


def test_one_process_writes_report_after_report_and_a_killed_one_is_replaced(
    sweeps: Sweeps, tmp_path: Path
) -> None:
    results = _copy(sweeps, tmp_path, sweeps.grid, sweeps.hostile)
    reporter = Reporter()
    try:
        for sweep_id in (sweeps.grid, sweeps.hostile):
            reporter.write(str(results), sweep_id)
            assert _written(results, sweep_id)
        assert reporter.started == 1  # the analysis imported once for both
        assert reporter._process is not None
        os.kill(reporter._process.pid, signal.SIGKILL)
        reporter._process.wait()
        (results / f"sweep={sweeps.grid}" / REPORT_FILE).unlink()
        reporter.write(str(results), sweeps.grid)
        assert _written(results, sweeps.grid) and reporter.started == 2
        process = reporter._process
    finally:
        reporter.close()
    assert process is not None and process.poll() is not None  # closing ends it


def test_an_idle_process_exits_and_the_next_report_starts_another(sweeps: Sweeps, tmp_path: Path) -> None:
    results = _copy(sweeps, tmp_path, sweeps.grid)
    reporter = Reporter(idle=0.3)
    try:
        reporter.write(str(results), sweeps.grid)
        process = reporter._process
        assert process is not None
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.returncode == 0, "an idle report process exits by itself"
        (results / f"sweep={sweeps.grid}" / REPORT_FILE).unlink()
        reporter.write(str(results), sweeps.grid)
        assert _written(results, sweeps.grid) and reporter.started == 2
    finally:
        reporter.close()


def test_a_report_that_cannot_be_written_says_why_and_the_next_is_written(
    sweeps: Sweeps, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    results = _copy(sweeps, tmp_path, sweeps.grid)
    reporter = Reporter()
    try:
        with caplog.at_level(logging.WARNING, logger="orchestrator.reports"):
            reporter.write(str(results), "no-such-sweep")
        assert "the report of sweep no-such-sweep was not written" in caplog.text
        assert "no report for sweep no-such-sweep" in caplog.text  # the report process's reason
        reporter.write(str(results), sweeps.grid)
        assert _written(results, sweeps.grid) and reporter.started == 1
    finally:
        reporter.close()
