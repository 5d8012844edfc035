"""`orchestrator run` embedded starts workers only when something must run (issue 12, item 8)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import cli, executions, write_sweep


def _worker_logs(workdir: Path) -> list[Path]:
    return sorted((workdir / ".orchestrator" / "logs").glob("worker-*.log"))


def test_a_reuse_only_rerun_starts_no_worker(workdir: Path) -> None:
    sweep = write_sweep(workdir, name="reuse", points=4)
    first = cli("run", str(sweep), "--workers", "1", workdir=workdir)
    assert first.returncode == 0, first.stdout + first.stderr
    assert len(_worker_logs(workdir)) == 1, "the first run started its workers"

    again = cli("run", str(sweep), "--workers", "1", workdir=workdir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(_worker_logs(workdir)) == 1, "every result reused: no worker started"
    assert sum(executions(workdir).values()) == 4

    # one new point: the coordinator finds something to run, and the workers start then
    grown = write_sweep(workdir, name="reuse", points=5)
    third = cli("run", str(grown), "--workers", "1", workdir=workdir)
    assert third.returncode == 0, third.stdout + third.stderr
    assert len(_worker_logs(workdir)) == 2
    assert executions(workdir) == {str(x): 1 for x in range(5)}
