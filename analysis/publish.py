"""Writing reports: on demand (``orchestrator report``) and when a sweep completes.

Files are written atomically (beside the results, through :class:`~core.results.ResultStore`, local
or on S3; a file of the user's own through a temporary file, then ``os.replace``), so a reader
never sees half a report and a failed write leaves nothing behind.
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
from core.storage import refusal

log = logging.getLogger(__name__)

Format = Literal["html", "json", "md"]


def render(result: SweepAnalysis, fmt: Format) -> str:
    """The report in ``fmt``: ``html`` (self-contained), ``json`` (the documented schema) or ``md``."""
    from analysis.html_report import to_html
    from analysis.markdown import to_markdown

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
    results_dir: str | os.PathLike[str],
    sweep_id: str,
    fmt: Format = "html",
    output: str | Path | None = None,
    **options: Any,
) -> str:
    """Analyse a sweep and write its report: ``output`` (a local file), or the default name beside
    its results (a local folder or S3). Returns where it was written.

    Raises:
        InputError: an unknown format, no results for ``sweep_id``, or a path that cannot be
            written (checked before the analysis runs; nothing is written then).
    """
    if fmt not in DEFAULT_NAMES:
        raise InputError(f"unknown report format '{fmt}'", field="format", fix="use html, json or md")
    store = ResultStore(results_dir)
    if output is not None and not os.access(Path(output).parent, os.W_OK):
        raise InputError(
            f"cannot write {output}: its folder is missing or not writable",
            field="--out",
            fix="create the folder or choose another path",
        )
    text = render(analyze_sweep(store.root, sweep_id, **options), fmt)
    try:
        if output is None:
            return store.write_text(sweep_id, DEFAULT_NAMES[fmt], text)
        return str(write_atomic(Path(output), text))
    except OSError as exc:
        if output is None:
            raise refusal(store.root, f"write {DEFAULT_NAMES[fmt]} to", exc) from None
        raise InputError(
            f"cannot write {output}: {exc.strerror}", field="--out", fix="choose another path"
        ) from None


def analyze_sweep(results_dir: str | os.PathLike[str], sweep_id: str, **options: Any) -> SweepAnalysis:
    """Load a sweep's results and analyse them (see :func:`analysis.report.analyze`).

    Raises:
        InputError: no results for ``sweep_id``.
    """
    return analyze(load_sweep_data(results_dir, sweep_id), **options)


def on_sweep_completed(results_dir: str | os.PathLike[str], sweep_id: str) -> str | None:
    """Write ``report.html`` and ``analysis.json`` beside the sweep's rows (``results/sweep=<id>/``).

    Called by the coordinator when a sweep completes. Safe to call twice (the files are
    replaced) and never raises: the sweep's results matter more than its report, so a failure
    is logged and ``None`` returned.

    Returns:
        The location of ``report.html``, or ``None`` if the analysis failed.
    """
    try:
        store = ResultStore(results_dir)
        result = analyze(load_sweep_data(store.root, sweep_id))
        store.write_text(sweep_id, ANALYSIS_FILE, result.to_json())
        return store.write_text(sweep_id, REPORT_FILE, render(result, "html"))
    except InputError as exc:  # its folder is gone (removed, or never written): nothing to report on
        log.warning("no report for sweep %s: %s", sweep_id, exc)
        return None
    except Exception:
        log.exception("analysis of sweep %s failed; results are unaffected", sweep_id)
        return None


def stored_analysis(results_dir: str | os.PathLike[str], sweep_id: str) -> dict[str, Any] | None:
    """The ``analysis.json`` written when the sweep completed, if any (for ``status``)."""
    return ResultStore(results_dir).stored_analysis(sweep_id)
