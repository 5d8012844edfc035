"""The Parquet result store: one dataset, partitioned ``sweep=<id>/project=<name>/``, in a local
folder or under ``s3://bucket/prefix`` (see :mod:`core.storage`).

Batches are written atomically (locally a temporary file, then a rename; on S3 one PUT) and named
after the first stream entry they hold, so re-writing a batch after a crash replaces it instead of
duplicating it.
When a partition holds too many small files they are compacted into one. Readers drop exact
duplicates (a crash between compaction and clean-up can briefly leave both).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Hashable, Iterator
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from core.errors import InputError
from core.rows import BASE_COLUMNS
from core.storage import S3, location, open_location, refusal

DEDUP_COLUMNS = ["experiment_id", "attempt", "status"]
PAGE_CACHED = 10_000  # pages up to this many rows are read through the decoded-file cache ...
PAGE_CACHE_BYTES = 256 * 2**20  # ... which keeps at most this much (least recently used first out)
#: what the analysis writes next to a sweep's rows when it completes (see ``analysis.publish``)
REPORT_FILE, ANALYSIS_FILE = "report.html", "analysis.json"
CONFIG_FILE = "sweep.json"  # the sweep's effective configuration, written when it is submitted
OUTCOME_FILE = "outcome.json"  # how the sweep ended (completed, cancelled, timed out) and why


class ResultStore:
    """Reads and writes the Parquet dataset under ``root``: a local folder or ``s3://bucket/prefix``.

    One code path over a ``pyarrow.fs`` filesystem (see :mod:`core.storage`). Places are given
    back as location strings: a local path, or an ``s3://`` URI.
    """

    def __init__(self, root: str | os.PathLike[str], compact_after_files: int = 16) -> None:
        self.root = location(root)
        self.fs, self._base = open_location(self.root)
        self._local = isinstance(self.fs, pafs.LocalFileSystem)
        self.compact_after_files = compact_after_files
        self._indexes: dict[str, tuple[Any, Any]] = {}  # sweep id -> (files' signature, row index)
        self._failures: dict[str, tuple[Any, list[dict[str, Any]]]] = {}
        self._schemas: dict[str, tuple[Any, pa.Schema]] = {}
        self._index_lock = threading.Lock()
        self._tables: OrderedDict[tuple[str, int, int], pa.Table] = OrderedDict()  # see _batches

    def _uri(self, path: str) -> str:
        """A filesystem path as the user names it (the S3 filesystem's paths start at the bucket)."""
        return path if self._local else S3 + path

    def _folder(self, sweep_id: str) -> str:
        return f"{self._base}/sweep={sweep_id}"

    def sweep_dir(self, sweep_id: str) -> str:
        """Where the sweep's rows and files are: a local folder or an ``s3://`` URI."""
        return self._uri(self._folder(sweep_id))

    def sweeps(self) -> list[str]:
        """The ids of the sweeps with something stored."""
        found = self.fs.get_file_info(pafs.FileSelector(self._base, allow_not_found=True))
        return sorted(
            i.base_name.removeprefix("sweep=")
            for i in found
            if i.type == pafs.FileType.Directory and i.base_name.startswith("sweep=")
        )

    def require(self, sweep_id: str) -> None:
        """Raise unless the store holds ``sweep_id`` (its ``sweep.json`` is written at submit).

        Raises:
            InputError: naming the store, the sweeps it does hold and the fix; the CLI, the
                Python API and the reports give this one message.
        """
        if self.fs.get_file_info(self._folder(sweep_id)).type == pafs.FileType.Directory:
            return
        known = self.sweeps()
        hint = f"known sweeps: {', '.join(known[:10])}" if known else "it holds no sweeps"
        raise InputError(
            f"no results for '{sweep_id}' under {self.root} ({hint})",
            field="execution_id",
            fix="check the id (`orchestrator status` lists the sweeps) and the results folder "
            "(--results-dir, or results_dir= in Python)",
        )

    def probe(self) -> None:
        """Check that the store can be written: write a small object and delete it again.

        Creates the store's folder if missing (on S3, pyarrow keeps an empty ``prefix/`` marker in
        its place), and leaves nothing else.

        Raises:
            InputError: the folder cannot be written, or on S3 the endpoint cannot be reached, the
                bucket does not exist or the credentials may not write (or delete) there; the
                message names ``results_dir``, what is wrong and the fix.
        """
        path = f"{self._base}/.probe-{uuid.uuid4().hex}"
        try:
            self._put(path, b"")
        except OSError as exc:
            raise refusal(self.root, "write a probe object to", exc) from None
        try:
            self.fs.delete_file(path)
        except OSError as exc:  # compaction deletes files: a store it cannot delete from is no store
            raise refusal(
                self.root, f"delete (so left behind) the probe object {self._uri(path)} in", exc
            ) from None

    def write_rows(self, sweep_id: str, rows: list[dict[str, Any]], batch: str | None = None) -> None:
        """Append ``rows`` (dicts from :func:`core.rows.result_row`), one file per project partition."""
        batch = batch or f"{time.time_ns()}-{uuid.uuid4().hex[:6]}"
        by_project: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_project[row["project_name"]].append(row)
        for project, project_rows in by_project.items():
            folder = f"{self._folder(sweep_id)}/project={project}"
            self._put(f"{folder}/part-{batch}.parquet", _parquet(_frame(project_rows)))
            parts = [i.path for i in self._parquet_files(folder) if i.base_name.startswith("part-")]
            if len(parts) >= self.compact_after_files:
                self._compact(folder, parts)

    def _compact(self, folder: str, parts: list[str]) -> None:
        existing = [i.path for i in self._parquet_files(folder) if i.base_name.startswith("compact-")]
        frames = [self._read(p) for p in [*existing, *parts]]
        merged = pd.concat(frames, ignore_index=True).drop_duplicates(subset=DEDUP_COLUMNS, keep="last")
        self._put(f"{folder}/compact-{time.time_ns()}.parquet", _parquet(merged))
        for path in [*existing, *parts]:
            with contextlib.suppress(FileNotFoundError):  # another compaction took it first
                self.fs.delete_file(path)

    def _put(self, path: str, data: bytes | pa.Buffer) -> None:
        """Write a whole file atomically. An S3 PUT is; a local file is written under a temporary
        name and renamed, so that a reader never sees half of it. An existing file is replaced."""
        if not self._local:
            with self.fs.open_output_stream(path) as out:
                out.write(data)
            return
        folder, _, name = path.rpartition("/")
        self.fs.create_dir(folder)
        tmp = f"{folder}/.{name}.{uuid.uuid4().hex[:6]}.tmp"
        try:
            with self.fs.open_output_stream(tmp) as out:
                out.write(data)
            self.fs.move(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                self.fs.delete_file(tmp)
            raise

    def read_text(self, sweep_id: str, name: str) -> str | None:
        """The text of the sweep's file ``name`` (``sweep.json``, ``report.html``...), if present."""
        try:
            with self.fs.open_input_stream(f"{self._folder(sweep_id)}/{name}") as stream:
                return stream.read().decode()
        except FileNotFoundError:
            return None

    def write_text(self, sweep_id: str, name: str, text: str) -> str:
        """Write (or replace) the sweep's file ``name`` atomically; returns its location."""
        path = f"{self._folder(sweep_id)}/{name}"
        self._put(path, text.encode())
        return self._uri(path)

    def write_effective_config(self, sweep_id: str, effective: dict[str, Any]) -> str:
        """Store the sweep's ``sweep.json``; returns its location."""
        text = json.dumps(effective, indent=2, sort_keys=True, default=str)
        if self.read_text(sweep_id, CONFIG_FILE) == text:
            # unchanged: left as it is, so a report written after it stays current
            return self._uri(f"{self._folder(sweep_id)}/{CONFIG_FILE}")
        return self.write_text(sweep_id, CONFIG_FILE, text)

    def report_current(self, sweep_id: str) -> bool:
        """Whether the sweep's report and analysis were written after its last rows, config and
        outcome (a rerun whose every result is reused changes none: it need not draw them again)."""
        folder = self._folder(sweep_id)
        report, analysis, config, outcome = self.fs.get_file_info(
            [f"{folder}/{name}" for name in (REPORT_FILE, ANALYSIS_FILE, CONFIG_FILE, OUTCOME_FILE)]
        )
        if report.type != pafs.FileType.File or analysis.type != pafs.FileType.File:
            return False
        stored = [*self._listing(sweep_id), config, outcome]
        inputs = [i.mtime_ns for i in stored if i.type == pafs.FileType.File]
        return bool(inputs) and min(report.mtime_ns, analysis.mtime_ns) >= max(inputs)

    def results_stamp(self, sweep_id: str) -> Hashable | None:
        """What changes exactly when the sweep's rows or config do (see :func:`_signature`);
        ``None`` while it has no rows. A cache of what is built from them keys on it."""
        listing = self._listing(sweep_id)
        if not listing:
            return None
        config = self.fs.get_file_info(f"{self._folder(sweep_id)}/{CONFIG_FILE}")
        return _signature(listing), config.mtime_ns

    def report_path(self, sweep_id: str) -> str | None:
        """The location of the sweep's ``report.html``, once written (``None`` too while S3 cannot
        be reached: a sweep's status must not fail for want of its report)."""
        path = f"{self._folder(sweep_id)}/{REPORT_FILE}"
        try:
            return self._uri(path) if self.fs.get_file_info(path).type == pafs.FileType.File else None
        except OSError:
            return None

    def stored_analysis(self, sweep_id: str) -> dict[str, Any] | None:
        """The sweep's ``analysis.json`` (the documented JSON form), once written."""
        try:
            return json.loads(self.read_text(sweep_id, ANALYSIS_FILE) or "")
        except (OSError, ValueError):
            return None

    def files(self, sweep_id: str | None = None) -> list[PurePosixPath]:
        """The Parquet files of a sweep (of every sweep: ``None``), as paths in :attr:`fs`."""
        return [PurePosixPath(i.path) for i in self._listing(sweep_id)]

    def _listing(self, sweep_id: str | None = None) -> list[pafs.FileInfo]:
        return self._parquet_files(self._folder(sweep_id) if sweep_id else self._base)

    def _parquet_files(self, folder: str) -> list[pafs.FileInfo]:
        """The Parquet files under ``folder``, by path (one listing request on S3)."""
        found = self.fs.get_file_info(pafs.FileSelector(folder, recursive=True, allow_not_found=True))
        return sorted(
            (i for i in found if i.type == pafs.FileType.File and i.extension == "parquet"),
            key=lambda i: i.path,
        )

    def _read(self, path: str, columns: list[str] | None = None) -> pd.DataFrame:
        return self._table(path, columns).to_pandas()

    def _table(self, path: str, columns: list[str] | None = None) -> pa.Table:
        with self.fs.open_input_file(path) as source:
            return pq.read_table(source, columns=columns)

    def load(self, sweep_id: str) -> pd.DataFrame:
        """All rows of a sweep as a DataFrame (empty frame with the base columns if none yet)."""
        frames = [self._read(i.path) for i in self._listing(sweep_id)]
        if not frames:
            return pd.DataFrame(columns=BASE_COLUMNS)
        frame = pd.concat(frames, ignore_index=True)
        if "fidelity" not in frame:  # written before fidelity ladders: no row is on a rung
            frame["fidelity"] = None
        frame = frame.drop_duplicates(subset=DEDUP_COLUMNS, keep="last")
        return frame.sort_values(["index", "attempt"], kind="stable").reset_index(drop=True)

    def _schema_of(self, path: str) -> pa.Schema:
        with self.fs.open_input_file(path) as source:
            return pq.read_schema(source)

    def schema(self, sweep_id: str) -> pa.Schema:
        """One schema for every file of the sweep (projects add their own ``param.*`` columns)."""
        files = self._listing(sweep_id)
        signature = _signature(files)
        cached = self._schemas.get(sweep_id)
        if cached is not None and cached[0] == signature:
            return cached[1]  # read per page, ten files' footers cost more than the page itself
        schemas = [self._schema_of(i.path) for i in files]
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
        for info, keep, codes, statuses in self._row_index(sweep_id):
            if left is not None and left <= 0:
                return
            chosen = keep if status is None else keep & (codes == _code(statuses, status))
            count = int(chosen.sum())
            if skip >= count:
                skip -= count
                continue
            at = 0
            for batch in self._batches(info, batch_rows, paged=limit is not None and limit <= PAGE_CACHED):
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

    def _batches(self, info: pafs.FileInfo, batch_rows: int, paged: bool) -> Iterator[pa.RecordBatch]:
        """A file's rows in batches: read as a stream, or, for a page, from a small cache of
        decoded files. A page is a few rows of one row group, but Parquet decodes the whole group:
        50 clients paging a 100,000-row sweep kept the API's CPU busy and its status slow."""
        if not paged:
            with self.fs.open_input_file(info.path) as source:
                # pre_buffer: a row group's columns in a few reads, not one request each on S3
                yield from pq.ParquetFile(source, pre_buffer=True).iter_batches(batch_size=batch_rows)
            return
        key = (info.path, info.mtime_ns or 0, info.size or 0)
        with self._index_lock:
            table = self._tables.get(key)
            if table is not None:
                self._tables.move_to_end(key)
        if table is None:
            table = self._table(info.path)
            with self._index_lock:
                self._tables[key] = table
                while (
                    sum(t.nbytes for t in self._tables.values()) > PAGE_CACHE_BYTES and len(self._tables) > 1
                ):
                    self._tables.popitem(last=False)
        yield from table.to_batches(max_chunksize=batch_rows)

    def _row_index(self, sweep_id: str) -> list[tuple[pafs.FileInfo, np.ndarray, np.ndarray, list[str]]]:
        """Per file: which rows to keep (first of their key), status codes, status names.

        Built from the key columns only, and kept while the sweep's files stay the same (a file
        is never changed in place: batches and compactions are new files).
        """
        with self._index_lock:  # one build at a time: concurrent readers wait for it, not redo it
            return self._build_row_index(sweep_id)

    def _build_row_index(
        self, sweep_id: str
    ) -> list[tuple[pafs.FileInfo, np.ndarray, np.ndarray, list[str]]]:
        files = self._listing(sweep_id)
        signature = _signature(files)
        cached = self._indexes.get(sweep_id)
        if cached is not None and cached[0] == signature:
            return cached[1]
        seen: list[np.ndarray] = []
        index = []
        for info in files:
            table = self._table(info.path, columns=DEDUP_COLUMNS)
            hashes = _key_hashes(table)
            keep = np.zeros(len(hashes), dtype=bool)
            keep[np.unique(hashes, return_index=True)[1]] = True  # first of each key in the file
            for earlier in seen:
                keep &= ~np.isin(hashes, earlier)
            seen.append(np.unique(hashes))
            encoded = pc.dictionary_encode(table["status"]).combine_chunks()
            codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int16)
            index.append((info, keep, codes, encoded.dictionary.to_pylist()))
        self._indexes[sweep_id] = (signature, index)
        return index

    def failures(self, sweep_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """The newest failed rows (error class, message, log tail), read column by column."""
        columns = ["experiment_id", "error_class", "error_message", "log", "timestamp", "parameters"]
        files = self._listing(sweep_id)
        signature = _signature(files)
        cached = self._failures.get(sweep_id)
        if cached is not None and cached[0] == signature:
            return cached[1][:limit]
        rows: list[dict[str, Any]] = []
        for info in files:
            with self.fs.open_input_file(info.path) as source:
                parquet = pq.ParquetFile(source, pre_buffer=True)
                names = set(parquet.schema_arrow.names)
                table = parquet.read(columns=[c for c in [*columns, "status"] if c in names])
            table = table.filter(pc.equal(table["status"], "failed")).drop_columns(["status"])
            rows.extend(table.to_pylist())
        rows.sort(key=lambda r: str(r.get("timestamp")), reverse=True)
        self._failures[sweep_id] = (signature, rows[:1000])
        return rows[:limit]

    def successful(self) -> dict[str, str]:
        """experiment_id -> sweep_id of every completed experiment in the dataset."""
        out: dict[str, str] = {}
        for exp_ids, sweeps in self.completed_ids():
            out.update(zip(exp_ids.tolist(), sweeps.tolist(), strict=True))
        return out

    def completed_ids(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(experiment ids, sweep ids)`` of the completed rows, one file at a time (a caller
        can keep a compact form of a dataset of any size)."""
        for info in self._listing():
            table = self._table(info.path, columns=["experiment_id", "status", "sweep_id"])
            done = table.filter(pc.equal(table["status"], "completed"))
            yield (
                np.asarray(done["experiment_id"].to_numpy(zero_copy_only=False), dtype=object),
                np.asarray(done["sweep_id"].to_numpy(zero_copy_only=False), dtype=object),
            )

    def rows_for(self, experiment_ids: set[str]) -> list[dict[str, Any]]:
        """The completed rows of these experiments, wherever they are stored."""
        rows: list[dict[str, Any]] = []
        for info in self._listing():
            frame = self._read(info.path)
            hit = frame[frame["experiment_id"].isin(experiment_ids) & (frame["status"] == "completed")]
            rows.extend(hit.drop_duplicates(subset=["experiment_id"]).to_dict("records"))
        return rows


def _code(statuses: list[str], status: str) -> int:
    """The code of ``status`` in a file's status dictionary (-1: no row has it)."""
    return statuses.index(status) if status in statuses else -1


def _signature(files: list[pafs.FileInfo]) -> tuple[tuple[str, int | None], ...]:
    """What the per-sweep caches (row index, schema, failures) are kept against: a file is never
    changed in place, so names and sizes change exactly when the sweep's rows do."""
    return tuple((i.path, i.size) for i in files)


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


def _parquet(frame: pd.DataFrame) -> pa.Buffer:
    """``frame`` as a whole Parquet file in memory: written in one piece, a failure half-way
    through leaves nothing behind (pyarrow's S3 stream makes an object of what it has on close)."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()
