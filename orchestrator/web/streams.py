"""What the API streams: result rows in JSON, CSV or Parquet, and a sweep's Server-Sent Events.

Results go out batch by batch from :meth:`ResultStore.stream`: a 100,000-row sweep is never held
in memory, whatever the format. Events come from the store's event list (ids, so a client resumes
with ``Last-Event-ID``) and from status snapshots (``progress``, ``refit``, ``finished``), which
carry no id: a client that reconnects gets a fresh snapshot rather than stale ones.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from starlette.concurrency import run_in_threadpool

from core.exports import formula_safe_batch

MEDIA_TYPES = {"json": "application/json", "csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
KEEPALIVE_S = 15.0


class _Drain(io.RawIOBase):
    """A write-only sink whose bytes are taken out as they come (``tell`` keeps counting)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.chunks.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        out, self.chunks = b"".join(self.chunks), []
        return out


def _plain(value: Any) -> Any:
    """NaN and infinities are not JSON: they go out as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def encode(batches: Iterator[pa.RecordBatch], schema: pa.Schema, fmt: str) -> Iterator[bytes]:
    """The rows of ``batches`` as a byte stream in ``fmt`` (json, csv or parquet)."""
    if fmt == "json":
        yield b"["
        first = True
        for batch in batches:
            parts = []
            for row in batch.to_pylist():
                text = json.dumps({k: _plain(v) for k, v in row.items()}, default=str)
                parts.append(text if first else "," + text)
                first = False
            yield "\n".join(parts).encode()
        yield b"]\n"
        return
    sink = _Drain()
    writer: Any = (
        pacsv.CSVWriter(sink, schema)
        if fmt == "csv"
        else pq.ParquetWriter(
            # the system allocator gives each row group's buffers back at once; Arrow's default
            # pool keeps them, which would grow the server by tens of MB per export
            pa.PythonFile(sink, mode="w"),
            schema,
            memory_pool=pa.system_memory_pool(),
        )
    )
    for batch in batches:
        writer.write_batch(formula_safe_batch(batch) if fmt == "csv" else batch)
        if chunk := sink.take():
            yield chunk
    writer.close()
    yield sink.take()


def sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    """One Server-Sent Event (JSON data on one line)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


async def follow_sweep(
    after: int,
    events_after: Callable[[int], list[dict[str, Any]]],
    snapshot: Callable[[], dict[str, Any]],
    disconnected: Callable[[], Any],
    interval: float = 0.5,
) -> AsyncIterator[bytes]:
    """A sweep's events from id ``after`` on, with progress and refits, until it is finished.

    Args:
        after: the last event id the client saw (``Last-Event-ID``), 0 for all kept events.
        events_after: stored events with an id above the given one, oldest first.
        snapshot: the sweep's status (``state``, ``counts``, ``done``, ``optimizer``, ...).
        disconnected: awaitable check of the client having gone away.
    """
    yield b"retry: 2000\n\n"
    last_progress: Any = None
    last_refit: Any = None
    last_sent = time.monotonic()
    while True:
        for entry in await run_in_threadpool(events_after, after):
            after = int(entry["id"])
            yield sse("alert" if entry.get("level") == "alert" else "info", entry, after)
            last_sent = time.monotonic()
        status = await run_in_threadpool(snapshot)
        progress = {k: status[k] for k in ("state", "counts", "cost", "total", "planned")}
        if progress != last_progress:
            last_progress = progress
            yield sse("progress", status)
            last_sent = time.monotonic()
        refit = status.get("optimizer", {}).get("created_at")
        if refit and refit != last_refit:
            if last_refit is not None or after == 0:
                yield sse("refit", status["optimizer"])
            last_refit = refit
        if status["done"]:
            for entry in await run_in_threadpool(events_after, after):
                after = int(entry["id"])
                yield sse("alert" if entry.get("level") == "alert" else "info", entry, after)
            yield sse("finished", status)
            return
        if time.monotonic() - last_sent > KEEPALIVE_S:
            yield b": keep-alive\n\n"
            last_sent = time.monotonic()
        if await disconnected():
            return
        await anyio.sleep(interval)
