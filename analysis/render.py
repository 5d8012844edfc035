"""The report as one self-contained HTML file (inline SVG figures, no network) or Markdown."""

from __future__ import annotations

import html
import json
from typing import Any

from analysis import figures
from analysis.report import SweepAnalysis

_SEVERITY = {"violation": 0, "warn": 1, "ok": 2}  # validation tables show problems first
_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.fig{margin:1em 0;overflow-x:auto}
.violation{color:#b00020;font-weight:bold}.warn{color:#a66a00}.ok{color:#176b1e}pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:.8em}
.muted{color:#777}
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _table(rows: list[dict[str, Any]], columns: list[str], limit: int = 50) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows[:limit]:
        cells = []
        for c in columns:
            text = _fmt(row.get(c))
            css = text.split(":")[0] if c in ("status", "validation") else ""
            cells.append(f'<td class="{html.escape(css)}">{html.escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f'<p class="muted">{len(rows) - limit} more rows in the JSON report</p>' if len(rows) > limit else ""
    )
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _figure(svg: str | None, caption: str) -> str:
    if not svg:
        return ""
    return f'<div class="fig" role="img" aria-label="{html.escape(caption)}">{svg}</div>'


def figure_list(result: SweepAnalysis) -> list[tuple[str, str]]:
    """(caption, svg) of every figure that applies to this sweep."""
    groups = result.groups_frame()
    varied = [f"param.{p}" for p in result.sweep["varied"]]
    metrics = [o["metric"] for o in result.sweep["objectives"]] or result.sweep["metrics"][:3]
    out: list[tuple[str, str | None]] = []
    if not groups.empty:
        for metric in metrics[:4]:
            out.append(
                (f"{metric} against each parameter", figures.metric_vs_parameters(groups, metric, varied))
            )
        if metrics:
            out.append((f"{metrics[0]} heatmaps", figures.heatmaps(groups, metrics[0], varied)))
    out.append(("convergence", figures.convergence(result.convergence)))
    out.append(("sensitivity", figures.sensitivity(result.sensitivity.get("indices", []))))
    out.append(("Pareto front", figures.pareto(result.pareto)))
    if not groups.empty:
        out.append(
            ("cross-project", figures.cross_project(groups, result.cross_project.get("metrics", []), varied))
        )
    return [(c, s) for c, s in out if s]


def to_html(result: SweepAnalysis) -> str:
    """One self-contained HTML document: styles and figures inline, nothing fetched."""
    s, summary = result.sweep, result.summary
    figs = dict(figure_list(result))
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>sweep {html.escape(s['id'])}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Sweep {html.escape(s['id'])}</h1>",
        f"<p>projects: {html.escape(', '.join(s['projects']))}; varied: {html.escape(', '.join(s['varied']) or '–')}; "
        f"objectives: {html.escape(_fmt(s['objectives']))}; generated {html.escape(s['generated_at'])}</p>",
        "<h2>Summary</h2>",
        _table(
            [{"status": k, "runs": v} for k, v in summary.get("status_counts", {}).items()],
            ["status", "runs"],
        ),
        f"<p>cost ${summary.get('cost', 0):.4f}; wall time {_fmt(summary.get('time', {}).get('wall_seconds'))} s; "
        f"run time {_fmt(summary.get('time', {}).get('run_seconds_total'))} s</p>",
        "<h3>Failures by error class</h3>",
        _table(
            [
                {
                    "error class": f["error_class"],
                    "count": f["count"],
                    "example": f["examples"][0]["message"] if f["examples"] else "",
                }
                for f in summary.get("failures", [])
            ],
            ["error class", "count", "example"],
        ),
        "<h2>Results</h2>",
        *(
            _figure(figs.get(c), c)
            for c in figs
            if c.endswith("against each parameter") or c.endswith("heatmaps")
        ),
        _table(
            result.groups,
            ["project", "parameters", "metric", "n", "mean", "stderr", "ci_low", "ci_high", "method"],
            limit=40,
        ),
        "<h2>Convergence</h2>",
        _figure(figs.get("convergence"), "convergence") or '<p class="muted">no objective values</p>',
        "<h2>Sensitivity</h2>",
        _figure(figs.get("sensitivity"), "sensitivity"),
        _table(
            result.sensitivity.get("indices", []),
            [
                "project",
                "metric",
                "parameter",
                "first_order",
                "first_order_ci",
                "total",
                "total_ci",
                "method",
            ],
        ),
        "<h3>GP length scales</h3>" if result.sensitivity.get("length_scales") else "",
        _table(
            result.sensitivity.get("length_scales", []), ["project", "metric", "parameter", "length_scale"]
        )
        if result.sensitivity.get("length_scales")
        else "",
        "<h2>Pareto front</h2>",
        _figure(figs.get("Pareto front"), "Pareto front"),
        _table(result.pareto.get("front", []), ["project", "parameters", "values"])
        if result.pareto.get("front")
        else '<p class="muted">fewer than two objectives</p>',
        "<h2>Comparisons</h2>",
        _figure(figs.get("cross-project"), "cross-project"),
        _table(
            result.cross_project.get("pairs", []),
            [
                "metric",
                "a",
                "b",
                "n_points",
                "mean_diff",
                "test",
                "p_value",
                "p_adjusted",
                "effect_size",
                "effect_size_kind",
                "significant",
            ],
        ),
        "<h3>Projects at each shared point (Benjamini-Hochberg corrected)</h3>"
        if result.cross_project.get("points")
        else "",
        _table(
            result.cross_project.get("points", []),
            [
                "metric",
                "a",
                "b",
                "parameters",
                "mean_a",
                "mean_b",
                "test",
                "p_value",
                "p_adjusted",
                "effect_size",
                "effect_size_kind",
                "significant",
            ],
        )
        if result.cross_project.get("points")
        else "",
        "<h3>Each point against the best (Benjamini-Hochberg corrected)</h3>",
        _table(
            [c for c in result.comparisons if c["kind"] == "configuration"],
            [
                "metric",
                "project",
                "parameters",
                "mean_diff",
                "p_value",
                "p_adjusted",
                "effect_size",
                "significant",
            ],
            limit=30,
        ),
        "<h2>Validation</h2>",
        f"<p>{html.escape(_fmt(result.validation.get('counts', {})))}</p>",
        _table(
            sorted(result.validation.get("checks", []), key=lambda c: _SEVERITY[c["status"]]),
            ["project", "parameters", "metric", "expected", "measured", "stderr", "z", "status", "reason"],
        ),
        _table(result.validation.get("rows", []), ["experiment_id", "project", "validation"]),
        "<h2>Reproducibility</h2>",
        _table(
            [{"package": k, "version": v} for k, v in result.reproducibility.get("packages", {}).items()],
            ["package", "version"],
        ),
        f"<p>reproducibility hashes: {html.escape(_fmt(result.reproducibility.get('reproducibility_hashes')))}</p>",
        "<h3>Code versions</h3><pre>"
        + html.escape(json.dumps(result.reproducibility.get("code_versions", {}), indent=2))
        + "</pre>",
        "<h3>Effective configuration</h3><pre>"
        + html.escape(json.dumps(result.reproducibility.get("config", {}), indent=2))
        + "</pre>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def to_markdown(result: SweepAnalysis) -> str:
    """A text summary for a terminal, an issue or a lab notebook (no figures)."""

    def table(rows: list[dict[str, Any]], columns: list[str], limit: int = 30) -> str:
        if not rows:
            return "_none_\n"
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows[:limit]]
        return "\n".join(lines) + "\n"

    s = result.sweep
    return "\n".join(
        [
            f"# Sweep {s['id']}\n",
            f"projects: {', '.join(s['projects'])}; varied: {', '.join(s['varied']) or '-'}\n",
            "## Summary\n",
            table(
                [{"status": k, "runs": v} for k, v in result.summary.get("status_counts", {}).items()],
                ["status", "runs"],
            ),
            "## Sensitivity\n",
            table(
                result.sensitivity.get("indices", []),
                ["project", "metric", "parameter", "first_order", "first_order_ci", "total", "total_ci"],
            ),
            "## Pareto front\n",
            table(result.pareto.get("front", []), ["project", "parameters", "values"]),
            "## Cross-project\n",
            table(
                result.cross_project.get("pairs", []),
                ["metric", "a", "b", "mean_diff", "p_value", "p_adjusted", "effect_size", "significant"],
            ),
            "## Validation\n",
            table(
                sorted(result.validation.get("checks", []), key=lambda c: _SEVERITY[c["status"]]),
                ["project", "parameters", "metric", "expected", "measured", "status"],
            ),
        ]
    )
