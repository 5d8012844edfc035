"""The reuse check's index of completed experiments: exact answers in 20 bytes a result."""

from __future__ import annotations

from pathlib import Path

from core.results import ResultStore
from orchestrator.reuse import DoneIndex


def _rows(sweep: str, ids: list[str], status: str = "completed") -> list[dict]:
    return [
        {
            "sweep_id": sweep,
            "experiment_id": e,
            "project_name": "p",
            "index": i,
            "status": status,
            "attempt": 1,
        }
        for i, e in enumerate(ids)
    ]


def test_the_index_names_the_sweep_of_each_completed_experiment_and_nothing_else(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    assert DoneIndex(store).sweeps_of(["a"]) == [None], "an empty dataset"
    store.write_rows("s1", _rows("s1", [f"e{i}" for i in range(1000)]))
    store.write_rows("s2", _rows("s2", ["x", "y"]) + _rows("s2", ["failed-one"], status="failed"))
    done = DoneIndex(store)
    assert len(done) == 1002
    assert done.sweeps_of(["e0", "e999", "y", "failed-one", "e1000", ""]) == [
        "s1",
        "s1",
        "s2",
        None,
        None,
        None,
    ]
    assert done.sweeps_of([]) == []
