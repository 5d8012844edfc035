"""Real sweeps, run once per test session, whose Parquet results the analysis tests read.

Each runs embedded (a private Redis and local worker processes, through the public API), exactly
as a user would, so the tests see the columns, dtypes and configuration a real sweep stores.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.support.s3 import s3, s3_server  # noqa: F401 - pytest fixtures

NOISY = Path(__file__).parent / "projects" / "noisy"
HOSTILE = Path(__file__).parent / "projects" / "hostile"
#: categorical values that try markup (HTML, a table cell, a heading) and a spreadsheet formula
HOSTILE_LABELS = [
    "<script>alert(1)</script>",
    "a|b",
    "line\nbreak\n# heading",
    '=HYPERLINK("http://x")',
    "fail <b>",
]
CANCEL_AFTER = 4  # results of the cancelled sweep before it is cancelled


@dataclass(frozen=True)
class Sweeps:
    results: Path
    grid: str  # full grid a x b x c, 4 repeats, two objectives (y max, cost_like min)
    adaptive: str  # Sobol-sampled a, b, c chosen by the optimizer, 40 runs
    cross: str  # examples/sweeps/cross_project.yaml
    checked: str  # adaptive, maximizing y with a validation bound y <= 2 that the best runs break
    hostile: str  # names and values carrying HTML, `|`, line breaks and a formula; one label fails
    cancelled: str  # a grid of slow runs, cancelled after CANCEL_AFTER results
    statuses: dict[str, Any]  # sweep id -> its ExecutionStatus once run (what the API's status shows)
    printed: dict[str, str]  # sweep id -> what `orchestrator status` prints for it
    violations: dict[str, Any]  # sweep id -> Orchestrator.violations(sweep id)


def _noisy(name: str, parameters: dict, **extra: object) -> dict:
    return {
        "name": name,
        "projects": [{"name": "noisy", "path": str(NOISY), "entry": "noisy:run"}],
        "parameters": parameters,
        "objectives": [{"metric": "y", "goal": "maximize"}, {"metric": "cost_like", "goal": "minimize"}],
        "seed": 3,
        **extra,
    }


@pytest.fixture(scope="session")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweeps]:
    from orchestrator import Orchestrator

    base = tmp_path_factory.mktemp("analysis-sweeps")
    grid = _noisy(
        "grid",
        {
            "a": {"start": 0, "stop": 1, "num": 5},
            "b": {"start": 0, "stop": 1, "num": 5},
            "c": {"start": 0, "stop": 1, "num": 8},
        },
        repeats=4,
        adaptive_sampling=False,
    )
    adaptive = _noisy(
        "adaptive",
        {
            "a": {"sample": "sobol", "low": 0, "high": 1, "n": 256},
            "b": {"sample": "sobol", "low": 0, "high": 1, "n": 256},
            "c": {"sample": "sobol", "low": 0, "high": 1, "n": 256},
        },
        adaptive_sampling=True,
        max_experiments=40,
        objectives=[{"metric": "y", "goal": "maximize"}],
    )
    checked = _noisy(
        "checked",
        {
            "a": {"start": 0, "stop": 1, "num": 9},
            "b": {"start": 0, "stop": 1, "num": 9},
            "c": [0.0],
        },
        adaptive_sampling=True,
        max_experiments=30,
        objectives=[{"metric": "y", "goal": "maximize"}],
        validation={"y": {"bounds": [None, 2.0]}, "truth": {"bounds": [0, 2.5]}},
        optimizer={"startup_points": 12},
    )
    hostile = {
        "name": "hostile",
        "projects": [{"name": "hostile", "path": str(HOSTILE), "entry": "hostile:run"}],
        "parameters": {"label": {"choices": HOSTILE_LABELS}, "x": [-1.5, 2.0]},
        "objectives": [{"metric": "score", "goal": "maximize"}],
        "adaptive_sampling": False,
        "seed": 1,
    }
    slow = _noisy("slow", {"a": {"start": 0, "stop": 1, "num": 40}}, adaptive_sampling=False)
    slow["projects"][0]["fixed"] = {"b": 0.5, "c": 0.0, "delay": 0.4}
    from orchestrator.render import console, print_status

    console.width = 400  # a wide terminal: no wrapped paths in what the tests read

    with Orchestrator(workers=2, results_dir=base / "results", state_dir=base / "state") as orch:
        ids = [orch.run(sweep, timeout=600).execution_id for sweep in (grid, adaptive)]
        ids.append(orch.run(ROOT / "examples" / "sweeps" / "cross_project.yaml", timeout=600).execution_id)
        ids.append(orch.run(checked, timeout=600).execution_id)
        ids.append(orch.run(hostile, timeout=600).execution_id)
        cancelled = orch.submit(slow).execution_id
        while orch.status(cancelled).finished < CANCEL_AFTER:
            time.sleep(0.1)
        orch.cancel(cancelled)
        ids.append(orch.wait(cancelled, timeout=600).execution_id)
        statuses, printed, violations = {}, {}, {}
        for sweep_id in ids:
            statuses[sweep_id] = orch.status(sweep_id)
            assert statuses[sweep_id].state == ("cancelled" if sweep_id == cancelled else "completed")
            with console.capture() as captured:
                print_status(orch, statuses[sweep_id])
            printed[sweep_id] = captured.get()
            violations[sweep_id] = orch.violations(sweep_id)
    yield Sweeps(base / "results", *ids, statuses=statuses, printed=printed, violations=violations)
