"""Writing reports: on demand (``orchestrator report``) and when a sweep completes.

Files are written atomically (a temporary file, then ``os.replace``), so a reader never sees half
a report and a failed write leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any, Literal

from analysis.dataset import load_sweep_data
from analysis.report import SweepAnalysis, analyze
from core.errors import InputError
from core.results import ANALYSIS_FILE, REPORT_FILE, ResultStore

log = logging.getLogger(__name__)

Format = Literal["html", "json", "md"]


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


DEFAULT_NAMES = {"html": REPORT_FILE, "json": ANALYSIS_FILE, "md": "report.md"}


def write_report(
    results_dir: str | Path,
    sweep_id: str,
    fmt: Format = "html",
    output: str | Path | None = None,
    **options: Any,
) -> Path:
    """Analyse a sweep and write its report: ``output``, or the default name in its results folder.

    Raises:
        InputError: an unknown format, no results for ``sweep_id``, or a path that cannot be
            written (checked before the analysis runs; nothing is written then).
    """
    if fmt not in DEFAULT_NAMES:
        raise InputError(f"unknown report format '{fmt}'", field="format", fix="use html, json or md")
    target = (
        Path(output) if output is not None else Path(results_dir) / f"sweep={sweep_id}" / DEFAULT_NAMES[fmt]
    )
    if output is not None and not os.access(target.parent, os.W_OK):
        raise InputError(
            f"cannot write {target}: its folder is missing or not writable",
            field="--out",
            fix="create the folder or choose another path",
        )
    text = render(analyze_sweep(results_dir, sweep_id, **options), fmt)
    try:
        return write_atomic(target, text)
    except OSError as exc:
        raise InputError(
            f"cannot write {target}: {exc.strerror}", field="--out", fix="choose another path"
        ) from None


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
    return ResultStore(results_dir).stored_analysis(sweep_id)
