"""CSV exports that a spreadsheet opens as data: text cells it would run as formulas are defused.

A result's text (an error message, a categorical parameter, a metric name in a JSON column) that
starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return) is a formula to Excel,
LibreOffice and Google Sheets. Following OWASP's advice on CSV injection, such a cell is
prefixed with a single quote, which the spreadsheet shows as text. Only text cells change:
numbers, negative ones included, are written as they are.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_PATTERN = r"^[=+\-@\t\r]"


def defuse(text: str) -> str:
    """``text`` as a spreadsheet shows it, never runs it."""
    return "'" + text if text.startswith(FORMULA_START) else text


def formula_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells are :func:`defuse`-d (other columns shared, untouched)."""
    out = frame.copy(deep=False)
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            out[column] = values.map(lambda v: defuse(v) if isinstance(v, str) else v)
    return out


def formula_safe_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with its string columns :func:`defuse`-d, in Arrow (no rows in Python)."""
    columns = []
    for column, field in zip(batch.columns, batch.schema, strict=True):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            risky = pc.match_substring_regex(column, _FORMULA_PATTERN)
            quoted = pc.binary_join_element_wise(
                pa.scalar("'", field.type), column, pa.scalar("", field.type)
            )
            column = pc.if_else(risky, quoted, column)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)
