"""A batch keeps a project loaded over its runs (``ProjectAdapter.session``): each run still
starts in the project folder with output of its own, and the process is as before afterwards."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from adapters import ProjectAdapter
from core.models import ExperimentStatus

NOISY = """
import logging
import os

def run(x: int) -> dict:
    start = os.getcwd()
    print(f"printed {x}")
    logging.getLogger("noisy").warning("logged %d", x)
    os.makedirs("elsewhere", exist_ok=True)
    os.chdir("elsewhere")  # a run that moves the working directory and leaves it there
    return {"y": float(x), "started_in_project": float(start.endswith("noisy"))}
"""


def test_runs_in_a_session_start_in_the_project_with_their_own_output(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    adapter = adapter_for(make_project("noisy", {"noisy.py": NOISY}), entry="noisy:run")
    cwd, path, handlers = os.getcwd(), list(sys.path), list(logging.getLogger().handlers)
    with adapter.session():
        results = [adapter.result_of(adapter.run_only({"x": x})) for x in range(3)]
    for x, result in enumerate(results):
        assert result.status == ExperimentStatus.COMPLETED, result.error_message
        assert result.metrics["y"] == x
        assert result.metrics["started_in_project"] == 1.0, "each run starts in the project folder"
        assert f"printed {x}" in result.log and f"logged {x}" in result.log, result.log
        others = [n for n in range(3) if n != x]
        assert not any(f"printed {n}" in result.log or f"logged {n}" in result.log for n in others)
    assert os.getcwd() == cwd, "the working directory is the process's again"
    assert sys.path == path, "the project's folder is off the import path"
    assert logging.getLogger().handlers == handlers, "no capture handler left behind"
    assert "noisy" not in sys.modules, "the project's modules are parked, as after a single run"


def test_a_session_keeps_runs_apart_as_single_runs_do(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    adapter = adapter_for(make_project("noisy", {"noisy.py": NOISY}), entry="noisy:run")
    single = adapter.execute_with_parameters({"x": 7})
    with adapter.session():
        kept = adapter.result_of(adapter.run_only({"x": 7}))
    assert (kept.status, kept.metrics, kept.log) == (single.status, single.metrics, single.log)


def test_a_project_in_a_process_of_its_own_has_no_session_to_keep(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    root = make_project("noisy", {"noisy.py": NOISY})
    adapter = adapter_for(root, entry="noisy:run", isolation="subprocess")
    with adapter.session():
        result = adapter.result_of(adapter.run_only({"x": 2}))
        assert adapter._captures is None, "nothing loaded in this process"
    assert result.status == ExperimentStatus.COMPLETED and result.metrics["y"] == 2.0
