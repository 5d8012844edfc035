"""The report's HTML tables: the points, failures, comparisons, sensitivity, validation and the
collapsed reproducibility block. Every value is escaped (:func:`table`)."""

from __future__ import annotations

import html
import json
from typing import Any

from analysis import narrative
from analysis.report import SweepAnalysis

SEVERITY = {"violation": 0, "warn": 1, "ok": 2}  # validation tables show problems first
GROUP_ROWS = 20  # rows of the points table (the JSON has them all)


def escaped(value: Any) -> str:
    return html.escape(narrative.text(value))


def table(rows: list[dict[str, Any]], columns: list[str], limit: int = 50, left: tuple[str, ...] = ()) -> str:
    head = "".join(f'<th class="{"l" if c in left else ""}">{html.escape(c)}</th>' for c in columns)
    body = []
    for row in rows[:limit]:
        cells = []
        for c in columns:
            value = narrative.text(row.get(c))
            css = value.split(":")[0] if c in ("status", "validation") else ("l" if c in left else "")
            cells.append(f'<td class="{html.escape(css)}">{html.escape(value)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f'<p class="muted">{len(rows) - limit} more rows in the JSON report</p>' if len(rows) > limit else ""
    )
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def section(title: str, *parts: str) -> str:
    body = "".join(p for p in parts if p)
    return f"<h2>{html.escape(title)}</h2>{body}" if body else ""


def point_rows(result: SweepAnalysis, limit: int) -> tuple[str, list[dict[str, Any]], list[str]]:
    """The points of the first objective, best first: (metric, rows, columns); the varied
    parameters only, the project only when there are several."""
    objectives = result.sweep["objectives"]
    metrics = [o["metric"] for o in objectives] or result.sweep["metrics"][:1]
    if not result.groups or not metrics:
        return "", [], []
    goal = objectives[0]["goal"] if objectives else "maximize"
    first = [g for g in result.groups if g["metric"] == metrics[0] and g["mean"] is not None]
    first.sort(key=lambda g: g["mean"], reverse=goal == "maximize")
    varied = result.sweep["varied"] or result.sweep["parameters"]
    rows = [
        {
            "project": g["project"],
            **{p: g["parameters"].get(p) for p in varied},
            "n": g["n"],
            "mean": g["mean"],
            "interval": narrative.interval(g),
            "method": g["method"] if g["ci_low"] is not None else None,
        }
        for g in first[:limit]
    ]
    columns = [*(["project"] if len(result.sweep["projects"]) > 1 else []), *varied, "n", "mean", "interval"]
    if any(r["method"] for r in rows):
        columns.append("method")
    return metrics[0], rows, columns


def points(result: SweepAnalysis) -> str:
    metric, rows, columns = point_rows(result, GROUP_ROWS)
    if not rows:
        return ""
    total = sum(1 for g in result.groups if g["metric"] == metric)
    more = (
        f'<p class="muted">{total - len(rows)} more points in the JSON report</p>'
        if total > len(rows)
        else ""
    )
    return section(f"Points by {metric}, best first", table(rows, columns, left=("project",)), more)


def comparisons(result: SweepAnalysis) -> str:
    cross = result.cross_project
    configurations = [c for c in result.comparisons if c["kind"] == "configuration"]
    return section(
        "Comparisons",
        table(
            cross.get("pairs", []),
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
        )
        if cross.get("pairs")
        else "",
        "<h3>Projects at each shared point (Benjamini-Hochberg corrected)</h3>"
        + table(
            cross["points"],
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
                "significant",
            ],
        )
        if cross.get("points")
        else "",
        "<h3>Each point against the best (Benjamini-Hochberg corrected)</h3>"
        + table(
            sorted(configurations, key=lambda c: c["p_adjusted"] if c["p_adjusted"] is not None else 2),
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
            left=("metric", "project", "parameters"),
        )
        if configurations
        else "",
    )


def sensitivity_table(result: SweepAnalysis) -> str:
    indices = result.sensitivity.get("indices", [])
    if not indices:
        return ""
    with_ci = any(i.get("first_order_ci") and i["first_order_ci"][0] is not None for i in indices)
    columns = [
        "project",
        "metric",
        "parameter",
        "first_order",
        *(["first_order_ci"] if with_ci else []),
        "total",
    ]
    columns += [*(["total_ci"] if with_ci else []), "method"]
    scales = result.sensitivity.get("length_scales", [])
    return (
        "<h3>Sensitivity indices</h3>"
        + table(indices, columns)
        + (
            "<h3>GP length scales (small: the metric changes fast along it)</h3>"
            + table(scales, ["project", "metric", "parameter", "length_scale"])
            if scales
            else ""
        )
    )


def validation(result: SweepAnalysis) -> str:
    v = result.validation
    if not (v.get("checks") or v.get("rows")):
        return ""
    counts = v.get("counts", {})
    return section(
        "Validation",
        f"<p>{counts.get('ok', 0)} ok, {counts.get('warn', 0)} warning(s), {counts.get('violation', 0)} violation(s).</p>",
        table(
            sorted(v.get("checks", []), key=lambda c: SEVERITY[c["status"]]),
            ["project", "parameters", "metric", "expected", "measured", "stderr", "z", "status", "reason"],
        )
        if v.get("checks")
        else "",
        "<h3>Runs out of bounds or flagged</h3>"
        + table(v["rows"], ["experiment_id", "project", "validation"], left=("validation",))
        if v.get("rows")
        else "",
    )


def failures(result: SweepAnalysis) -> str:
    failures = result.summary.get("failures", [])
    rows = [
        {
            "error class": f["error_class"],
            "count": f["count"],
            "example": f["examples"][0]["message"] if f["examples"] else "",
        }
        for f in failures
    ]
    return section(
        "Failures by error class",
        table(rows, ["error class", "count", "example"], left=("example",)) if rows else "",
    )


def reproducibility(result: SweepAnalysis) -> str:
    r = result.reproducibility
    packages = table(
        [{"package": k, "version": v} for k, v in r.get("packages", {}).items()], ["package", "version"]
    )
    hashes = r.get("reproducibility_hashes") or {}
    return (
        "<details><summary>Reproducibility: package and code versions, the effective configuration</summary>"
        + packages
        + f"<p>{escaped(hashes.get('count'))} distinct reproducibility hashes, digest <code>{html.escape(str(hashes.get('digest', '')))}</code></p>"
        + "<h3>Code versions</h3><pre>"
        + html.escape(json.dumps(r.get("code_versions", {}), indent=2))
        + "</pre><h3>Effective configuration</h3><pre>"
        + html.escape(json.dumps(r.get("config", {}), indent=2))
        + "</pre></details>"
    )
