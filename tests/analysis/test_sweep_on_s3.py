"""A real sweep's results on S3 (moto over HTTP): read, analysed and reported as from a folder."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from analysis import analyze_sweep, load_sweep_data, on_sweep_completed, stored_analysis
from analysis.publish import write_report
from core.errors import InputError
from core.results import ResultStore
from tests.analysis.conftest import NOISY, Sweeps
from tests.support.s3 import S3


@pytest.fixture
def uploaded(sweeps: Sweeps, s3: S3) -> str:
    """The cross-project sweep's folder, copied as it is to ``s3://<new bucket>/lab/results``."""
    root = f"s3://{s3.bucket()}/lab/results"
    store = ResultStore(root)
    pafs.copy_files(
        str(sweeps.results / f"sweep={sweeps.cross}"),
        f"{store._base}/sweep={sweeps.cross}",
        source_filesystem=pafs.LocalFileSystem(),
        destination_filesystem=store.fs,
    )
    return root


def test_a_sweep_on_s3_reads_and_analyses_as_from_a_folder(sweeps: Sweeps, uploaded: str) -> None:
    remote, local = load_sweep_data(uploaded, sweeps.cross), load_sweep_data(sweeps.results, sweeps.cross)
    assert remote.effective == local.effective and remote.metrics == local.metrics
    assert remote.frame.equals(local.frame)
    remote_json, local_json = (
        json.loads(analyze_sweep(root, sweeps.cross).to_json()) for root in (uploaded, sweeps.results)
    )
    for document in (remote_json, local_json):
        document["sweep"].pop("generated_at")  # the second each was drawn in
    assert remote_json == local_json
    with pytest.raises(
        InputError, match=f"no results for 'nope' under {uploaded} .known sweeps: {sweeps.cross}"
    ):
        load_sweep_data(uploaded, "nope")


def test_the_report_of_a_sweep_on_s3_is_written_beside_its_rows(sweeps: Sweeps, uploaded: str) -> None:
    store = ResultStore(uploaded)
    store.fs.delete_file(f"{store._base}/sweep={sweeps.cross}/report.html")  # as before it completed
    assert store.report_path(sweeps.cross) is None and not store.report_current(sweeps.cross)
    written = on_sweep_completed(uploaded, sweeps.cross)
    assert written == store.report_path(sweeps.cross) == f"{uploaded}/sweep={sweeps.cross}/report.html"
    assert "<html" in (store.read_text(sweeps.cross, "report.html") or "")
    assert store.report_current(sweeps.cross)
    stored = stored_analysis(uploaded, sweeps.cross)
    assert stored is not None and stored["cross_project"]["metrics"]
    assert write_report(uploaded, sweeps.cross, "md") == f"{uploaded}/sweep={sweeps.cross}/report.md"
    assert (store.read_text(sweeps.cross, "report.md") or "").startswith("#")


def test_an_embedded_sweep_keeps_its_results_and_report_on_s3(s3: S3, tmp_path: Path) -> None:
    from orchestrator import Orchestrator
    from orchestrator.api import load_results

    root = f"s3://{s3.bucket()}/lab/results"
    sweep = {
        "name": "on-s3",
        "projects": [{"name": "noisy", "path": str(NOISY), "entry": "noisy:run"}],
        "parameters": {"a": {"start": 0, "stop": 1, "num": 3}, "b": [0.0, 1.0], "c": [0.5]},
        "repeats": 2,
        "adaptive_sampling": False,
        "objectives": [{"metric": "y", "goal": "maximize"}],
    }
    with Orchestrator(workers=1, results_dir=root, state_dir=tmp_path / "state") as orch:
        status = orch.run(sweep, timeout=300)
        assert (
            status.counts["completed"] == 12 and status.results_path == f"{root}/sweep={status.execution_id}"
        )
        assert status.report_path == f"{root}/sweep={status.execution_id}/report.html"
        assert orch.run(sweep, timeout=300).counts["reused"] == 12, "what S3 holds is found again"
    assert len(load_results(status.execution_id, root)) == 12
