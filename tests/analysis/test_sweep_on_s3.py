"""A real sweep's results on S3 (moto over HTTP): read, analysed and reported as from a folder."""

from __future__ import annotations

import json

import pyarrow.fs as pafs
import pytest

from analysis import analyze_sweep, load_sweep_data, on_sweep_completed, stored_analysis
from analysis.publish import write_report
from core.errors import InputError
from core.results import ResultStore
from tests.analysis.conftest import Sweeps
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
    assert json.loads(analyze_sweep(uploaded, sweeps.cross).to_json()) == json.loads(
        analyze_sweep(sweeps.results, sweeps.cross).to_json()
    )
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
