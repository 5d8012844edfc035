"""The Parquet store keeps failed rows (batches, compaction and re-writes: tests/core/test_results_s3.py,
on a folder and on S3)."""

from __future__ import annotations

from pathlib import Path

from core.models import ExperimentResult, ExperimentStatus
from core.results import ResultStore
from core.rows import result_row


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


def test_failed_rows_are_kept_with_class_and_message(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.write_rows("s", [_row(1), _row(2, "failed")])
    frame = store.load("s").set_index("index")
    assert frame.loc[2, "status"] == "failed" and frame.loc[2, "error_class"] == "scientific"
    assert frame.loc[2, "error_message"] == "diverged" and frame.loc[2, "param.x"] == 2
    assert store.successful() == {"e1": "s"}
