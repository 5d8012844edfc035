"""The Parquet result store: one dataset, partitioned ``sweep=<id>/project=<name>/``.

Batches are written atomically (temporary file, then ``os.replace``) and named after the first
stream entry they hold, so re-writing a batch after a crash replaces it instead of duplicating it.
When a partition holds too many small files they are compacted into one. Readers drop exact
duplicates (a crash between compaction and clean-up can briefly leave both).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from orchestrator.expectations import Expectation, verdict
from orchestrator.models import ExperimentResult

DEDUP_COLUMNS = ["experiment_id", "attempt", "status"]
#: what the analysis writes next to a sweep's rows when it completes (see ``analysis.publish``)
REPORT_FILE, ANALYSIS_FILE = "report.html", "analysis.json"
BASE_COLUMNS = [
    "sweep_id",
    "experiment_id",
    "project_name",
    "index",
    "repeat",
    "status",
    "error_class",
    "error_message",
    "execution_time",
    "cost",
    "attempt",
    "worker_host",
    "resource",
    "device",
    "added",
    "reproducibility_hash",
    "timestamp",
    "parameters",
    "metrics",
    "log",
    "validation",
]


def result_row(
    result: ExperimentResult, expectations: Mapping[str, Expectation] | None = None
) -> dict[str, Any]:
    """Flatten a result into one row: seed fields, ``param.*`` and ``metric.*`` columns, and the
    run's ``validation`` verdict against the sweep's ``expectations`` and its adapter's range
    flags (``None`` for a run without metrics)."""
    row = result.model_dump(mode="json", exclude={"parameters", "metrics", "extra"})
    row["validation"] = verdict(result.metrics, result.extra, expectations or {}) if result.metrics else None
    row["parameters"] = json.dumps(result.parameters, sort_keys=True)
    row["metrics"] = json.dumps(result.metrics, sort_keys=True)
    if result.extra:
        row["extra"] = json.dumps(result.extra, sort_keys=True, default=str)
    for name, value in result.parameters.items():
        row[f"param.{name}"] = value
    for name, value in result.metrics.items():
        row[f"metric.{name}"] = value
    return row


class ResultStore:
    """Reads and writes the Parquet dataset under ``root``."""

    def __init__(self, root: str | Path, compact_after_files: int = 16) -> None:
        self.root = Path(root)
        self.compact_after_files = compact_after_files

    def sweep_dir(self, sweep_id: str) -> Path:
        return self.root / f"sweep={sweep_id}"

    def write_rows(self, sweep_id: str, rows: list[dict[str, Any]], batch: str | None = None) -> None:
        """Append ``rows`` (dicts from :func:`result_row`), one file per project partition."""
        batch = batch or f"{time.time_ns()}-{uuid.uuid4().hex[:6]}"
        by_project: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_project[row["project_name"]].append(row)
        for project, project_rows in by_project.items():
            folder = self.sweep_dir(sweep_id) / f"project={project}"
            folder.mkdir(parents=True, exist_ok=True)
            frame = _frame(project_rows)
            _atomic_write(frame, folder / f"part-{batch}.parquet")
            parts = sorted(folder.glob("part-*.parquet"))
            if len(parts) >= self.compact_after_files:
                self._compact(folder, parts)

    def _compact(self, folder: Path, parts: list[Path]) -> None:
        existing = sorted(folder.glob("compact-*.parquet"))
        frames = [pq.read_table(p).to_pandas() for p in [*existing, *parts]]
        merged = pd.concat(frames, ignore_index=True).drop_duplicates(subset=DEDUP_COLUMNS, keep="last")
        _atomic_write(merged, folder / f"compact-{time.time_ns()}.parquet")
        for path in [*existing, *parts]:
            path.unlink(missing_ok=True)

    def write_effective_config(self, sweep_id: str, effective: dict[str, Any]) -> Path:
        path = self.sweep_dir(sweep_id) / "sweep.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(effective, indent=2, sort_keys=True, default=str))
        os.replace(tmp, path)
        return path

    def report_path(self, sweep_id: str) -> Path | None:
        """The sweep's ``report.html``, once written."""
        path = self.sweep_dir(sweep_id) / REPORT_FILE
        return path if path.is_file() else None

    def stored_analysis(self, sweep_id: str) -> dict[str, Any] | None:
        """The sweep's ``analysis.json`` (the documented JSON form), once written."""
        try:
            return json.loads((self.sweep_dir(sweep_id) / ANALYSIS_FILE).read_text())
        except (OSError, ValueError):
            return None

    def files(self, sweep_id: str | None = None) -> list[Path]:
        base = self.sweep_dir(sweep_id) if sweep_id else self.root
        return sorted(base.glob("**/*.parquet")) if base.exists() else []

    def load(self, sweep_id: str) -> pd.DataFrame:
        """All rows of a sweep as a DataFrame (empty frame with the base columns if none yet)."""
        frames = [_read(p) for p in self.files(sweep_id)]
        if not frames:
            return pd.DataFrame(columns=BASE_COLUMNS)
        frame = pd.concat(frames, ignore_index=True)
        frame = frame.drop_duplicates(subset=DEDUP_COLUMNS, keep="last")
        return frame.sort_values(["index", "attempt"], kind="stable").reset_index(drop=True)

    def successful(self) -> dict[str, str]:
        """experiment_id -> sweep_id of every completed experiment in the dataset."""
        out: dict[str, str] = {}
        for path in self.files():
            table = pq.read_table(path, columns=["experiment_id", "status", "sweep_id"])
            frame = table.to_pandas()
            for exp_id, sweep in frame.loc[
                frame["status"] == "completed", ["experiment_id", "sweep_id"]
            ].values:
                out[exp_id] = sweep
        return out

    def rows_for(self, experiment_ids: set[str]) -> list[dict[str, Any]]:
        """The completed rows of these experiments, wherever they are stored."""
        rows: list[dict[str, Any]] = []
        for path in self.files():
            frame = _read(path)
            hit = frame[frame["experiment_id"].isin(experiment_ids) & (frame["status"] == "completed")]
            rows.extend(hit.drop_duplicates(subset=["experiment_id"]).to_dict("records"))
        return rows


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if "timestamp" in frame:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    return frame


def _atomic_write(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
    os.replace(tmp, path)


def _read(path: Path) -> pd.DataFrame:
    frame = pq.read_table(path).to_pandas()
    # Hive partition columns are also stored in the rows themselves; nothing to add.
    return frame
