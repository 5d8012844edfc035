"""The dashboard's trial table: a sweep's rows paged, sorted and filtered on the server.

``GET /api/v1/sweeps/{id}/trials?sort=metric.energy&order=asc&filter=x > 0.5; status = completed
&offset=0&limit=50`` answers one page, the columns and how many rows match, so a table over a
100,000-row sweep sends the browser 50 rows at a time. The sweep's rows are read once per
``TABLE_TTL_S`` at most for every client (without the heavy columns: logs and the JSON copies of
the parameters and metrics) and kept as one Arrow table; each page is a filter, a sort and a slice.
"""

from __future__ import annotations

import math
import re
import threading
import time
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from core.errors import InputError

if TYPE_CHECKING:
    from orchestrator.api import Orchestrator

TABLE_TTL_S = 1.0
#: shown in the table, in this order, before the parameters and metrics
LEADING = ["index", "experiment_id", "status", "project_name", "repeat"]
TRAILING = ["cost", "execution_time", "timestamp", "worker_host", "error_class", "error_message"]
_CONDITION = re.compile(r"^\s*([\w.\-]+)\s*(<=|>=|!=|==|=|<|>|~)\s*(.*?)\s*$")
_OPS = {"=": pc.equal, "==": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal}
_OPS |= {">": pc.greater, ">=": pc.greater_equal}

_tables: dict[str, tuple[float, float, tuple[str, ...], pa.Table]] = {}
_locks: dict[str, threading.Lock] = {}


def sweep_table(orch: Orchestrator, sweep_id: str) -> pa.Table:
    """The sweep's rows with the table's columns.

    Kept while the sweep's files stay the same (a finished sweep is read once), and while it
    runs read again at most every ``TABLE_TTL_S`` or five times the last read's time, whichever
    is longer: a 100,000-row sweep takes about 0.7 s to read, and must not keep a core busy.
    """
    with _locks.setdefault(sweep_id, threading.Lock()):  # pollers wait for one read, not each read
        files = tuple(str(f) for f in orch.store.files(sweep_id))
        cached = _tables.get(sweep_id)
        if cached is not None:
            at, took, signature, table = cached
            if signature == files or time.monotonic() - at < max(TABLE_TTL_S, 5 * took):
                return table
        started = time.monotonic()
        schema = orch.store.schema(sweep_id)
        names = table_columns(schema.names) + [n for n in ("extra",) if n in schema.names]
        shape = pa.schema([schema.field(n) for n in names])
        table = pa.Table.from_batches([b.select(names) for b in orch.store.stream(sweep_id)], schema=shape)
        now = time.monotonic()
        _tables[sweep_id] = (now, now - started, files, table)
        return table


def table_columns(names: list[str]) -> list[str]:
    params = sorted(n for n in names if n.startswith("param."))
    metrics = sorted(n for n in names if n.startswith("metric."))
    return [n for n in LEADING if n in names] + params + metrics + [n for n in TRAILING if n in names]


def resolve(table: pa.Table, name: str, field: str) -> str:
    """A column by its name, or by a parameter's or metric's name without the prefix."""
    for candidate in (name, f"param.{name}", f"metric.{name}"):
        if candidate in table.column_names:
            return candidate
    shown = ", ".join(
        c.removeprefix("param.").removeprefix("metric.") for c in table.column_names if c != "extra"
    )
    raise InputError(f"no column '{name}' in this sweep's results", field=field, fix=f"use one of: {shown}")


def filter_mask(table: pa.Table, text: str) -> pa.ChunkedArray | None:
    """Rows matching ``x > 0.5; status = completed; error_message ~ diverged`` (``and`` joins too)."""
    conditions = [c for c in re.split(r";|\band\b", text) if c.strip()]
    mask = None
    for condition in conditions:
        match = _CONDITION.match(condition)
        if not match:
            raise InputError(
                f"cannot read the filter condition '{condition.strip()}'",
                field="filter",
                fix="write conditions as `name op value` joined by ';' (op: = != < <= > >= ~), "
                "e.g. `x > 0.5; status = completed`",
            )
        name, op, raw = match.groups()
        column = table.column(resolve(table, name, "filter"))
        if op == "~":
            test = pc.match_substring(pc.cast(column, pa.string()), raw, ignore_case=True)
        elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            try:
                number = float(raw)
            except ValueError:
                raise InputError(
                    f"'{name}' is numeric; '{raw}' is not a number",
                    field="filter",
                    fix=f"compare it with a number, e.g. `{name} {op} 0.5`",
                ) from None
            test = _OPS[op](column, number)
        else:
            test = _OPS[op](pc.cast(column, pa.string()), raw.strip("'\""))
        test = pc.fill_null(test, False)
        mask = test if mask is None else pc.and_(mask, test)
    return mask


def trials_page(
    table: pa.Table,
    *,
    sort: str | None,
    order: str,
    filter_text: str | None,
    status: str | None,
    offset: int,
    limit: int,
) -> dict[str, Any]:
    total = table.num_rows
    if status:
        table = table.filter(pc.equal(table.column("status"), status))
    mask = filter_mask(table, filter_text) if filter_text else None
    if mask is not None:
        table = table.filter(mask)
    if sort:
        column = resolve(table, sort, "sort")
        # nulls (and NaN) last whichever the order: a missing value is never the best
        table = table.sort_by([(column, "descending" if order == "desc" else "ascending")])
        values = table.column(column)
        missing = pc.is_null(values, nan_is_null=True)
        table = pa.concat_tables([table.filter(pc.invert(missing)), table.filter(missing)])
    page = table.slice(offset, limit)
    if "extra" in page.column_names:  # the curves' source (see insights), not a column to show
        page = page.drop_columns(["extra"])
    return {
        "columns": page.column_names,
        "count": total,
        "total": table.num_rows,
        "offset": offset,
        "limit": limit,
        "rows": [{k: _plain(v) for k, v in row.items()} for row in page.to_pylist()],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
