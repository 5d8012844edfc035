"""The API's CSV export defuses formula cells as the CLI's does (issue 24.5)."""

from __future__ import annotations

import csv
import io

import pyarrow as pa

from orchestrator.web.streams import encode


def test_csv_cells_that_start_a_formula_are_quoted_and_numbers_kept() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "error_message": ['=HYPERLINK("http://x")', "@SUM(A1)", "fine", None],
            "metric.y": [-1.5, 2.0, -3.0, None],
        }
    )
    body = b"".join(encode(iter([batch, batch]), batch.schema, "csv")).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["error_message"] for r in rows[:3]] == ['\'=HYPERLINK("http://x")', "'@SUM(A1)", "fine"]
    assert [r["metric.y"] for r in rows[:3]] == ["-1.5", "2", "-3"]
    as_json = b"".join(encode(iter([batch]), batch.schema, "json")).decode()
    assert '"=HYPERLINK' in as_json  # only the spreadsheet format is changed
