"""The Parquet result store: one dataset, partitioned ``sweep=<id>/project=<name>/``.

Batches are written atomically (temporary file, then ``os.replace``) and named after the first
stream entry they hold, so re-writing a batch after a crash replaces it instead of duplicating it.
When a partition holds too many small files they are compacted into one. Readers drop exact
duplicates (a crash between compaction and clean-up can briefly leave both).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.expectations import Expectation, verdict
from core.models import ExperimentResult

DEDUP_COLUMNS = ["experiment_id", "attempt", "status"]
PAGE_CACHED = 10_000  # pages up to this many rows are read through the decoded-file cache ...
PAGE_CACHE_BYTES = 256 * 2**20  # ... which keeps at most this much (least recently used first out)
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
        self._indexes: dict[str, tuple[Any, Any]] = {}  # sweep id -> (files' signature, row index)
        self._failures: dict[str, tuple[Any, list[dict[str, Any]]]] = {}
        self._schemas: dict[str, tuple[Any, pa.Schema]] = {}
        self._index_lock = threading.Lock()
        self._tables: OrderedDict[tuple[Path, int, int], pa.Table] = OrderedDict()  # see _paged

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
        text = json.dumps(effective, indent=2, sort_keys=True, default=str)
        if path.is_file() and path.read_text() == text:
            return path  # unchanged: left as it is, so a report written after it stays current
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        return path

    def report_current(self, sweep_id: str) -> bool:
        """Whether the sweep's report and analysis were written after its last rows and config
        (a rerun whose every result is reused changes neither: it need not draw them again)."""
        folder = self.sweep_dir(sweep_id)
        try:
            written = min((folder / name).stat().st_mtime_ns for name in (REPORT_FILE, ANALYSIS_FILE))
            inputs = [
                p.stat().st_mtime_ns for p in [*self.files(sweep_id), folder / "sweep.json"] if p.exists()
            ]
        except OSError:
            return False
        return bool(inputs) and written >= max(inputs)

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

    def schema(self, sweep_id: str) -> pa.Schema:
        """One schema for every file of the sweep (projects add their own ``param.*`` columns)."""
        files = self.files(sweep_id)
        signature = _signature(files)
        cached = self._schemas.get(sweep_id)
        if cached is not None and cached[0] == signature:
            return cached[1]  # read per page, ten files' footers cost more than the page itself
        schemas = [pq.read_schema(p) for p in files]
        if not schemas:
            return pa.schema([(name, pa.string()) for name in BASE_COLUMNS])
        schema = pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")
        self._schemas[sweep_id] = (signature, schema)
        return schema

    def stream(
        self,
        sweep_id: str,
        *,
        status: str | None = None,
        offset: int = 0,
        limit: int | None = None,
        batch_rows: int = 4096,
    ) -> Iterator[pa.RecordBatch]:
        """The sweep's rows in batches of at most ``batch_rows``, file by file, in :meth:`schema`.

        Memory stays at one batch plus the sweep's row index (about 2 bytes a row: which rows
        are duplicates a crash during compaction left, as :meth:`load` drops them, and each
        row's status), whatever the sweep's size. Files wholly before ``offset`` are not read.
        Rows come in file order, stable while no file is added, so ``offset``/``limit`` page
        through a finished sweep.
        """
        schema = self.schema(sweep_id)
        skip, left = offset, limit
        for path, keep, codes, statuses in self._row_index(sweep_id):
            if left is not None and left <= 0:
                return
            chosen = keep if status is None else keep & (codes == _code(statuses, status))
            count = int(chosen.sum())
            if skip >= count:
                skip -= count
                continue
            at = 0
            for batch in self._batches(path, batch_rows, paged=limit is not None and limit <= PAGE_CACHED):
                mask, at = chosen[at : at + batch.num_rows], at + batch.num_rows
                batch = batch.filter(pa.array(mask))
                if skip:
                    dropped = min(skip, batch.num_rows)
                    batch, skip = batch.slice(dropped), skip - dropped
                if left is not None:
                    batch = batch.slice(0, left)
                    left -= batch.num_rows
                if batch.num_rows:
                    yield _conform(batch, schema)
                if left is not None and left <= 0:
                    return

    def _batches(self, path: Path, batch_rows: int, paged: bool) -> Iterator[pa.RecordBatch]:
        """A file's rows in batches: read as a stream, or, for a page, from a small cache of
        decoded files. A page is a few rows of one row group, but Parquet decodes the whole group:
        50 clients paging a 100,000-row sweep kept the API's CPU busy and its status slow."""
        if not paged:
            yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
            return
        stat = path.stat()
        key = (path, stat.st_mtime_ns, stat.st_size)
        with self._index_lock:
            table = self._tables.get(key)
            if table is not None:
                self._tables.move_to_end(key)
        if table is None:
            table = pq.read_table(path)
            with self._index_lock:
                self._tables[key] = table
                while (
                    sum(t.nbytes for t in self._tables.values()) > PAGE_CACHE_BYTES and len(self._tables) > 1
                ):
                    self._tables.popitem(last=False)
        yield from table.to_batches(max_chunksize=batch_rows)

    def _row_index(self, sweep_id: str) -> list[tuple[Path, np.ndarray, np.ndarray, list[str]]]:
        """Per file: which rows to keep (first of their key), status codes, status names.

        Built from the key columns only, and kept while the sweep's files stay the same (a file
        is never changed in place: batches and compactions are new files).
        """
        with self._index_lock:  # one build at a time: concurrent readers wait for it, not redo it
            return self._build_row_index(sweep_id)

    def _build_row_index(self, sweep_id: str) -> list[tuple[Path, np.ndarray, np.ndarray, list[str]]]:
        files = self.files(sweep_id)
        signature = _signature(files)
        cached = self._indexes.get(sweep_id)
        if cached is not None and cached[0] == signature:
            return cached[1]
        seen: list[np.ndarray] = []
        index = []
        for path in files:
            table = pq.read_table(path, columns=DEDUP_COLUMNS)
            hashes = _key_hashes(table)
            keep = np.zeros(len(hashes), dtype=bool)
            keep[np.unique(hashes, return_index=True)[1]] = True  # first of each key in the file
            for earlier in seen:
                keep &= ~np.isin(hashes, earlier)
            seen.append(np.unique(hashes))
            encoded = pc.dictionary_encode(table["status"]).combine_chunks()
            codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int16)
            index.append((path, keep, codes, encoded.dictionary.to_pylist()))
        self._indexes[sweep_id] = (signature, index)
        return index

    def failures(self, sweep_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """The newest failed rows (error class, message, log tail), read column by column."""
        columns = ["experiment_id", "error_class", "error_message", "log", "timestamp", "parameters"]
        files = self.files(sweep_id)
        signature = _signature(files)
        cached = self._failures.get(sweep_id)
        if cached is not None and cached[0] == signature:
            return cached[1][:limit]
        rows: list[dict[str, Any]] = []
        for path in files:
            names = set(pq.read_schema(path).names)
            table = pq.read_table(path, columns=[c for c in [*columns, "status"] if c in names])
            table = table.filter(pc.equal(table["status"], "failed")).drop_columns(["status"])
            rows.extend(table.to_pylist())
        rows.sort(key=lambda r: str(r.get("timestamp")), reverse=True)
        self._failures[sweep_id] = (signature, rows[:1000])
        return rows[:limit]

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


def _code(statuses: list[str], status: str) -> int:
    """The code of ``status`` in a file's status dictionary (-1: no row has it)."""
    return statuses.index(status) if status in statuses else -1


def _signature(files: list[Path]) -> tuple[tuple[str, int], ...]:
    """What the per-sweep caches (row index, schema, failures) are kept against: a file is never
    changed in place, so names and sizes change exactly when the sweep's rows do."""
    return tuple((p.name, p.stat().st_size) for p in files)


def _key_hashes(table: pa.Table) -> np.ndarray:
    """A 64-bit hash of each row's deduplication key (experiment id, attempt, status)."""
    parts = [pc.cast(table.column(name), pa.string()) for name in DEDUP_COLUMNS]
    joined = pc.fill_null(pc.binary_join_element_wise(*parts, "\x1f"), "")
    return pd.util.hash_array(np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object))


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` in ``schema``: its columns cast, the ones it lacks as nulls."""
    columns = []
    for field in schema:
        index = batch.schema.get_field_index(field.name)
        if index < 0:
            columns.append(pa.nulls(batch.num_rows, field.type))
        else:
            columns.append(batch.column(index).cast(field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


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
