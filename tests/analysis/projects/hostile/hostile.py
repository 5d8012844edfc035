"""A project whose names and text try to inject markup into reports and formulas into CSV files.

Its metric names and messages carry HTML, ``|`` and line breaks; the sweep's categorical values
too (see conftest.py). A report must show them as text.
"""

from __future__ import annotations

SCRIPT_METRIC = "<script>alert('metric')</script>|score"


def run(label: str, x: float) -> dict[str, float]:
    if label.startswith("fail"):
        raise RuntimeError("<script>alert('error')</script> | cell\n# injected heading\n| a | b |")
    return {"score": x + len(label) / 100, SCRIPT_METRIC: -x}
