"""Writing reports: on demand (``orchestrator report``) and when a sweep completes.

Files are written atomically (a temporary file, then ``os.replace``), so a reader never sees half
a report and a failed write leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any, Literal

from analysis.dataset import load_sweep_data
from analysis.report import SweepAnalysis, analyze

log = logging.getLogger(__name__)

Format = Literal["html", "json", "md"]
REPORT_FILE, ANALYSIS_FILE = "report.html", "analysis.json"


def render(result: SweepAnalysis, fmt: Format) -> str:
    """The report in ``fmt``: ``html`` (self-contained), ``json`` (the documented schema) or ``md``."""
    from analysis.render import to_html, to_markdown

    if fmt == "html":
        return to_html(result)
    if fmt == "json":
        return result.to_json()
    if fmt == "md":
        return to_markdown(result)
    raise ValueError(f"unknown report format '{fmt}'; use html, json or md")


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def analyze_sweep(results_dir: str | Path, sweep_id: str, **options: Any) -> SweepAnalysis:
    """Load a sweep's results and analyse them (see :func:`analysis.report.analyze`).

    Raises:
        InputError: no results for ``sweep_id``.
    """
    return analyze(load_sweep_data(results_dir, sweep_id), **options)


def on_sweep_completed(results_dir: str | Path, sweep_id: str) -> Path | None:
    """Write ``report.html`` and ``analysis.json`` into ``results/sweep=<id>/``.

    Called by the coordinator when a sweep completes. Safe to call twice (the files are
    replaced) and never raises: the sweep's results matter more than its report, so a failure
    is logged and ``None`` returned.

    Returns:
        The path of ``report.html``, or ``None`` if the analysis failed.
    """
    try:
        data = load_sweep_data(results_dir, sweep_id)
        result = analyze(data)
        write_atomic(data.path / ANALYSIS_FILE, result.to_json())
        return write_atomic(data.path / REPORT_FILE, render(result, "html"))
    except Exception:
        log.exception("analysis of sweep %s failed; results are unaffected", sweep_id)
        return None


def stored_analysis(results_dir: str | Path, sweep_id: str) -> dict[str, Any] | None:
    """The ``analysis.json`` written when the sweep completed, if any (for ``status``)."""
    path = Path(results_dir) / f"sweep={sweep_id}" / ANALYSIS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
