"""Every benchmark still runs: each script in ``benchmarks/`` with ``--smoke``, in a subprocess.

Smoke mode is the same code path as a full run at its smallest size (seconds), so a benchmark
cannot rot unseen between the rare full runs. The check is that it ran: a non-zero exit or a
traceback fails, a figure never does (the figures of a smoke run mean nothing). The scripts are
found, not listed: a new benchmark is covered without an edit here. Each starts its own Redis
(and fake services) and stops them; none touches a server of the user's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REGRESSION_TABLE, ROOT

#: modules the scripts import, not scripts themselves
LIBRARIES = {"harness.py", "multihost_report.py", "s3_server.py"}
#: run below at its small size, which covers its smoke path (every part, each table row)
REGRESSIONS = ROOT / "benchmarks" / "regressions.py"
SCRIPTS = sorted(
    path for path in (ROOT / "benchmarks").glob("*.py") if path.name not in LIBRARIES and path != REGRESSIONS
)
#: the figures regressions.py compares (those of the committed baseline); with the test extra
#: installed, none is skipped
FIGURES = set(json.loads((ROOT / "benchmarks" / "baseline.json").read_text())["figures"])


def test_the_benchmarks_are_found() -> None:
    assert {"overhead.py", "scale.py", "soak.py"} <= {path.name for path in SCRIPTS}
    assert REGRESSIONS.exists()


@pytest.mark.timeout(330)
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_benchmark_runs_in_smoke_mode(script: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        cwd=tmp_path,  # anything a script leaves in its working folder goes with the test
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"{script.name} --smoke exited with {run.returncode}:\n{output[-4000:]}"
    assert "Traceback" not in output, f"{script.name} --smoke printed a traceback:\n{output[-4000:]}"
    assert run.stdout.strip(), f"{script.name} --smoke printed no comparison"


@pytest.mark.timeout(900)
def test_the_regression_table_is_measured_against_the_baseline(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """CI's regression check: the ratio figures at their small size against ``baseline.json``.
    The table is printed at the end of the test run (tests/conftest.py); a figure never fails it."""
    run = subprocess.run(
        [sys.executable, str(REGRESSIONS)], cwd=tmp_path, capture_output=True, text=True, timeout=840
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"regressions.py exited with {run.returncode}:\n{output[-4000:]}"
    table = run.stdout.strip().splitlines()
    measured = {words[0] for words in map(str.split, table[2:]) if words} & FIGURES
    assert measured == FIGURES, f"figures missing from the table:\n{run.stdout}"
    request.config.stash[REGRESSION_TABLE] = "\n".join(table[:-1])  # the last line is its JSON
