"""Each sweep's results stream, read by the coordinator: the workers add rows to it (the
``RECORD`` script), the coordinator reads them in its consumer group and acks and deletes them
once they are in Parquet.

A row read and never acked stays pending in the group, so rows a coordinator read and died
before writing are found again by the next one (:meth:`ResultStream.open`).
"""

from __future__ import annotations

import json
from typing import Any

import redis

from orchestrator.store import keys

RESULTS_GROUP = "writer"
_CONSUMER = "coordinator"
#: a stream entry: (entry id, result row)
Entry = tuple[str, dict[str, Any]]


class ResultStream:
    """The ``results`` stream of every sweep (``SweepState.results``)."""

    def __init__(self, client: redis.Redis) -> None:
        self._r = client

    def open(self, sweep_id: str) -> list[Entry]:
        """Make sure the stream's group exists; return the rows read but never acked (a
        coordinator died between reading and writing them)."""
        key = keys.sweep(sweep_id, "results")
        try:
            self._r.xgroup_create(key, RESULTS_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:  # BUSYGROUP: it exists already (resume)
            if "BUSYGROUP" not in str(exc):
                raise
        replies = self._r.xreadgroup(RESULTS_GROUP, _CONSUMER, {key: "0"}, count=1_000_000)
        return _entries(replies).get(sweep_id, [])

    def read(self, sweep_ids: list[str], count: int, block_ms: int | None = None) -> dict[str, list[Entry]]:
        """New rows of the sweeps: sweep -> its entries, blocking up to ``block_ms`` for the first."""
        if not sweep_ids:
            return {}
        streams = {keys.sweep(s, "results"): ">" for s in sweep_ids}
        return _entries(self._r.xreadgroup(RESULTS_GROUP, _CONSUMER, streams, count=count, block=block_ms))

    def ack(self, sweep_id: str, entry_ids: list[str]) -> None:
        """The rows are in Parquet: drop them from the stream."""
        key = keys.sweep(sweep_id, "results")
        pipe = self._r.pipeline()
        pipe.xack(key, RESULTS_GROUP, *entry_ids)
        pipe.xdel(key, *entry_ids)
        pipe.execute()

    def backlog(self, sweep_id: str) -> int:
        """Rows in the stream, read or not: 0 once every row is in Parquet."""
        return int(self._r.xlen(keys.sweep(sweep_id, "results")))


def _entries(response: Any) -> dict[str, list[Entry]]:
    out: dict[str, list[Entry]] = {}
    for key, entries in response or []:
        rows = out.setdefault(keys.sweep_of(key), [])
        rows.extend((entry_id, json.loads(fields["row"])) for entry_id, fields in entries if fields)
    return out
