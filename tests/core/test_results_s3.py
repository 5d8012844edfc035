"""The result store's behaviours, the same on a local folder and on ``s3://bucket/prefix``.

A conformance suite: every test of ``store`` runs twice, on a temporary folder and on a bucket of
moto's S3 server reached over HTTP by pyarrow (tests/support/s3.py). Then the store check: what
it says, and leaves, when the store cannot be written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from core.errors import InputError
from core.models import ExperimentResult, ExperimentStatus
from core.results import ANALYSIS_FILE, REPORT_FILE, ResultStore
from core.rows import result_row
from core.settings import Settings
from core.storage import location
from tests.support.s3 import S3, SECRET


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives: a local folder, or a prefix in a new bucket."""
    if request.param == "local":
        return str(tmp_path / "results")
    return f"s3://{request.getfixturevalue('s3').bucket()}/team/results"


def _row(i: int, status: str = "completed", project: str = "p", sweep: str = "s", **params: object) -> dict:
    result = ExperimentResult(
        experiment_id=f"e{i}",
        project_name=project,
        parameters={"x": i, **params},
        metrics={"y": i * 2.0} if status == "completed" else {},
        status=ExperimentStatus(status),
        sweep_id=sweep,
        index=i,
        error_class=None if status == "completed" else "scientific",
        error_message=None if status == "completed" else "diverged",
    )
    return result_row(result)


def _stored(store: ResultStore) -> set[str]:
    """Every file under the store (relative to it), whatever the kind."""
    import pyarrow.fs as pafs

    found = store.fs.get_file_info(pafs.FileSelector(store._base, recursive=True, allow_not_found=True))
    return {i.path.removeprefix(store._base + "/") for i in found if i.type == pafs.FileType.File}


def test_rows_written_are_read_back_partitioned_by_sweep_and_project(root: str) -> None:
    store = ResultStore(root)
    store.write_rows("s", [_row(1, project="a"), _row(2, project="b"), _row(3, "failed", project="a")])
    store.write_rows("t", [_row(9, sweep="t")])
    frame = store.load("s").set_index("index")
    assert list(frame.index) == [1, 2, 3] and frame.loc[2, "metric.y"] == 4.0
    assert frame.loc[3, "status"] == "failed" and frame.loc[3, "error_message"] == "diverged"
    assert {p.parent.name for p in store.files("s")} == {"project=a", "project=b"}
    assert len(store.files()) == 3 and store.sweeps() == ["s", "t"]
    assert store.successful() == {"e1": "s", "e2": "s", "e9": "t"}
    assert sorted(r["index"] for r in store.rows_for({"e1", "e3", "e9"})) == [1, 9]  # completed only
    assert store.load("nothing").empty and store.files("nothing") == []


def test_rewriting_a_batch_after_a_crash_replaces_it(root: str) -> None:
    store = ResultStore(root)
    store.write_rows("s", [_row(1), _row(2)], batch="1-0")
    store.write_rows("s", [_row(1), _row(2), _row(3)], batch="1-0")  # re-read after a crash, plus one more
    assert sorted(store.load("s")["index"]) == [1, 2, 3]
    assert [p.name for p in store.files("s")] == ["part-1-0.parquet"]


def test_small_batches_are_compacted_and_nothing_else_is_left(root: str) -> None:
    store = ResultStore(root, compact_after_files=4)
    for batch in range(10):
        store.write_rows("s", [_row(batch * 10 + i) for i in range(10)], batch=str(batch))
    assert len(store.files("s")) < 4
    frame = store.load("s")
    assert len(frame) == 100 and frame["experiment_id"].is_unique
    assert frame["metric.y"].sum() == sum(2.0 * i for i in range(100))
    assert all(name.endswith(".parquet") for name in _stored(store)), "no temporary files"


def test_readers_drop_the_duplicates_a_crash_during_compaction_leaves(root: str) -> None:
    store = ResultStore(root)
    store.write_rows("s", [_row(i) for i in range(10)], batch="1")
    store.write_rows("s", [_row(i) for i in range(5, 15)], batch="2")  # 5..9 twice, as before a clean-up
    assert sorted(store.load("s")["index"]) == list(range(15))
    streamed = pa.Table.from_batches(list(store.stream("s")))
    assert sorted(streamed["index"].to_pylist()) == list(range(15))


def test_stream_pages_through_files_in_one_schema(root: str) -> None:
    store = ResultStore(root)
    for batch in range(3):
        rows = [_row(batch * 10 + i, "failed" if i % 3 == 0 else "completed") for i in range(10)]
        store.write_rows("s", rows, batch=str(batch))
    store.write_rows("s", [_row(100, project="q", z=0.5)])  # another project, its own parameter
    schema = store.schema("s")
    assert {"param.x", "param.z", "metric.y"} <= set(schema.names)
    whole = pa.Table.from_batches(list(store.stream("s", batch_rows=7)), schema=schema)
    assert whole.num_rows == 31 and whole["param.z"].null_count == 30
    pages = [
        pa.Table.from_batches(list(store.stream("s", offset=o, limit=8)), schema=schema)
        for o in (0, 8, 16, 24)
    ]
    assert [i for page in pages for i in page["index"].to_pylist()] == whole["index"].to_pylist()
    failed = pa.Table.from_batches(list(store.stream("s", status="failed")), schema=schema)
    assert sorted(failed["index"].to_pylist()) == [0, 3, 6, 9, 10, 13, 16, 19, 20, 23, 26, 29]
    assert [f["experiment_id"] for f in store.failures("s", limit=3)] and len(store.failures("s")) == 12
    assert store.failures("s")[0]["error_message"] == "diverged"


def test_config_report_and_analysis_live_beside_the_rows(root: str) -> None:
    store = ResultStore(root)
    assert store.report_path("s") is None and store.stored_analysis("s") is None
    config = store.write_effective_config("s", {"sweep": {"name": "n"}})
    assert config == f"{store.sweep_dir('s')}/sweep.json" and store.sweep_dir("s").startswith(root)
    assert json.loads(store.read_text("s", "sweep.json") or "") == {"sweep": {"name": "n"}}
    store.write_rows("s", [_row(1)])
    assert not store.report_current("s")
    store.write_text("s", ANALYSIS_FILE, json.dumps({"validation": {}}))
    assert (
        store.write_text("s", REPORT_FILE, "<html>")
        == store.report_path("s")
        == f"{store.sweep_dir('s')}/report.html"
    )
    assert store.stored_analysis("s") == {"validation": {}} and store.read_text("s", REPORT_FILE) == "<html>"
    assert store.report_current("s")
    store.write_effective_config("s", {"sweep": {"name": "n"}})  # unchanged: not written again
    assert store.report_current("s")


def test_a_local_store_names_its_places_as_paths(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "results")
    store.write_text("s", REPORT_FILE, "<html>")
    assert store.report_path("s") == str(tmp_path / "results" / "sweep=s" / "report.html")
    assert Path(store.sweep_dir("s")).is_dir()


# -- the store check ----------------------------------------------------------------------------


def test_the_check_passes_and_leaves_nothing_behind(root: str) -> None:
    store = ResultStore(root)
    store.probe()  # on an empty store
    store.write_rows("s", [_row(1)])
    before = _stored(store)
    store.probe()
    assert _stored(store) == before


def test_on_s3_the_check_leaves_at_most_the_folder_marker(s3: S3) -> None:
    bucket = s3.bucket()
    ResultStore(f"s3://{bucket}/team/results").probe()
    assert s3.keys(bucket) <= {"team/results/"}  # pyarrow's empty marker: the folder, as on a disk


def test_an_unreachable_endpoint_is_named_with_the_fix(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = s3.bucket()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # the discard port: closed
    with pytest.raises(InputError) as caught:
        ResultStore(f"s3://{bucket}/team").probe()
    error = caught.value
    assert error.field == "results_dir" and f"s3://{bucket}/team" in error.message
    assert "cannot reach the S3 endpoint http://127.0.0.1:9" in error.message
    assert "AWS_ENDPOINT_URL_S3" in (error.fix or "")


def test_a_missing_bucket_is_named_with_the_fix(s3: S3) -> None:
    with pytest.raises(InputError) as caught:
        ResultStore("s3://no-such-bucket-here/team").probe()
    error = caught.value
    assert "the bucket 'no-such-bucket-here' does not exist" in error.message
    assert "aws s3 mb s3://no-such-bucket-here" in (error.fix or "")


def test_credentials_that_may_only_read_are_refused_and_never_shown(
    s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.bucket()
    ResultStore(f"s3://{bucket}/team").write_rows("s", [_row(1)])
    key_id, secret = s3.user("s3:Get*", "s3:List*")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    with s3.enforcing():  # moto checks IAM: the reader may list, not write
        store = ResultStore(f"s3://{bucket}/team")
        assert store.sweeps() == ["s"]
        with pytest.raises(InputError) as caught:
            store.probe()
    error = caught.value
    assert "access denied" in error.message and f"s3://{bucket}/team" in error.message
    assert "s3:PutObject" in (error.fix or "")
    assert secret not in str(error) and key_id not in str(error)
    assert not [k for k in s3.keys(bucket) if ".probe-" in k]


def test_a_folder_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError) as caught:
        ResultStore(tmp_path / "file" / "results").probe()
    assert caught.value.field == "results_dir" and str(tmp_path / "file" / "results") in caught.value.message


# -- the location -------------------------------------------------------------------------------


def test_an_s3_uri_survives_a_path_and_the_settings() -> None:
    assert location(Path("s3://bucket/prefix/")) == "s3://bucket/prefix"  # pathlib made it s3:/bucket/prefix
    assert Settings(results_dir=Path("s3://bucket/prefix")).results_dir == "s3:/bucket/prefix"
    assert ResultStore(Settings(results_dir=Path("s3://b/p")).results_dir).root == "s3://b/p"
    assert Settings(results_dir=Path("results")).results_dir == "results"


@pytest.mark.parametrize(
    "uri", [f"s3://AKIDEXAMPLE:{SECRET}@bucket/p", f"s3://bucket/p?secret_key={SECRET}", "gs://bucket/p"]
)
def test_uris_with_credentials_or_other_schemes_are_refused_without_echo(uri: str) -> None:
    with pytest.raises(InputError) as caught:
        ResultStore(uri)
    assert caught.value.field == "results_dir" and SECRET not in str(caught.value)


def test_credentials_that_may_write_but_not_delete_are_refused_naming_the_leftover(
    s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.bucket()
    key_id, secret = s3.user("s3:Get*", "s3:List*", "s3:PutObject")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    with s3.enforcing(), pytest.raises(InputError) as caught:
        ResultStore(f"s3://{bucket}/team").probe()
    (left,) = [k for k in s3.keys(bucket) if ".probe-" in k]  # compaction could not clean up either
    assert f"delete (so left behind) the probe object s3://{bucket}/{left}" in caught.value.message
    assert "access denied" in caught.value.message and "s3:DeleteObject" in (caught.value.fix or "")
