"""CSV cells a spreadsheet would run as formulas are defused; numbers are left as they are."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from core.exports import defuse, formula_safe_batch, formula_safe_frame

FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def test_text_cells_that_start_a_formula_are_quoted() -> None:
    assert [defuse(text) for text in FORMULAS] == ["'" + text for text in FORMULAS]
    assert defuse("plain = text") == "plain = text" and defuse("") == ""


def test_a_frame_keeps_its_numbers_and_defuses_its_text() -> None:
    frame = pd.DataFrame(
        {
            "text": [*FORMULAS, "ok"],
            "number": [-1.5, -2, 0, 3, -4, 5, -6],
            "mixed": ["-x", -1, None, 2.0, "a", "@", "b"],
        }
    )
    safe = formula_safe_frame(frame)
    assert safe["text"].tolist() == ["'" + t for t in FORMULAS] + ["ok"]
    assert (
        safe["number"].tolist() == frame["number"].tolist() and safe["number"].dtype == frame["number"].dtype
    )
    assert safe["mixed"].tolist()[:2] == ["'-x", -1] and safe["mixed"].tolist()[5] == "'@"
    assert frame["text"].iloc[0] == FORMULAS[0]  # the caller's frame is untouched
    first = safe.to_csv(index=False).splitlines()[1]
    assert first.startswith("\"'=HYPERLINK") and ",-1.5," in first  # quoted by CSV, the quote inside


def test_an_arrow_batch_is_defused_in_arrow() -> None:
    batch = pa.RecordBatch.from_pydict(
        {"text": [*FORMULAS, None, "ok"], "number": [-1.5, -2.0, 0.0, 3.0, -4.0, 5.0, None, -6.0]}
    )
    safe = formula_safe_batch(batch)
    assert safe.schema == batch.schema
    assert safe.column("text").to_pylist() == ["'" + t for t in FORMULAS] + [None, "ok"]
    assert safe.column("number").to_pylist() == batch.column("number").to_pylist()
    sink = pa.BufferOutputStream()
    with pacsv.CSVWriter(sink, safe.schema) as writer:
        writer.write_batch(safe)
    text = sink.getvalue().to_pybytes().decode()
    assert '"-1.5"' not in text and "-1.5" in text  # a number, unquoted and unchanged
