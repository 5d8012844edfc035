"""The Parquet store: atomic batches, compaction, idempotent re-writes, failed rows kept."""

from __future__ import annotations

from pathlib import Path

from core.models import ExperimentResult, ExperimentStatus
from core.results import ResultStore, result_row


def _row(i: int, status: str = "completed", project: str = "p") -> dict:
    result = ExperimentResult(
        experiment_id=f"e{i}",
        project_name=project,
        parameters={"x": i},
        metrics={"y": i * 2.0} if status == "completed" else {},
        status=ExperimentStatus(status),
        sweep_id="s",
        index=i,
        error_class=None if status == "completed" else "scientific",
        error_message=None if status == "completed" else "diverged",
    )
    return result_row(result)


def test_batches_compact_into_few_files(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, compact_after_files=4)
    for batch in range(10):
        store.write_rows("s", [_row(batch * 10 + i) for i in range(10)], batch=str(batch))
    assert len(store.files("s")) < 4
    frame = store.load("s")
    assert len(frame) == 100 and frame["experiment_id"].is_unique
    assert frame["metric.y"].sum() == sum(2.0 * i for i in range(100))
    assert not list(tmp_path.glob("**/*.tmp"))


def test_rewriting_a_batch_after_a_crash_does_not_duplicate(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.write_rows("s", [_row(1), _row(2)], batch="1-0")
    store.write_rows("s", [_row(1), _row(2), _row(3)], batch="1-0")  # re-read after a crash, plus one more
    assert sorted(store.load("s")["index"]) == [1, 2, 3]


def test_failed_rows_are_kept_with_class_and_message(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.write_rows("s", [_row(1), _row(2, "failed")])
    frame = store.load("s").set_index("index")
    assert frame.loc[2, "status"] == "failed" and frame.loc[2, "error_class"] == "scientific"
    assert frame.loc[2, "error_message"] == "diverged" and frame.loc[2, "param.x"] == 2
    assert store.successful() == {"e1": "s"}


def test_partitioned_by_sweep_and_project(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.write_rows("s", [_row(1, project="a"), _row(2, project="b")])
    assert {p.parent.name for p in store.files("s")} == {"project=a", "project=b"}
