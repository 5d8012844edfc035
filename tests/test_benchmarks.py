"""Every benchmark still runs: each script in ``benchmarks/`` with ``--smoke``, in a subprocess.

Smoke mode is the same code path as a full run at its smallest size (seconds), so a benchmark
cannot rot unseen between the rare full runs. The check is that it ran: a non-zero exit or a
traceback fails, a figure never does (the figures of a smoke run mean nothing). The scripts are
found, not listed: a new benchmark is covered without an edit here. Each starts its own Redis
(and fake services) and stops them; none touches a server of the user's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

#: modules the scripts import, not scripts themselves
LIBRARIES = {"harness.py", "multihost_report.py", "s3_server.py"}
SCRIPTS = sorted(path for path in (ROOT / "benchmarks").glob("*.py") if path.name not in LIBRARIES)


def test_the_benchmarks_are_found() -> None:
    assert {"overhead.py", "scale.py", "soak.py"} <= {path.name for path in SCRIPTS}


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
