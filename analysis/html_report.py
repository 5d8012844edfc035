"""The report as one self-contained HTML file (inline SVG figures, no network).

It opens with the answer (how the sweep ended, the best configuration of each objective with
its interval, feasibility), then the figures, each under the question it answers, then the
tables; the effective configuration closes it, collapsed. A section with nothing to say is left
out. Every value from the results is escaped. Markdown is :mod:`analysis.markdown`.
"""

from __future__ import annotations

import html
from typing import Any

from analysis import fidelity, figures, landscape, narrative
from analysis.html_tables import (
    comparisons,
    escaped,
    failures,
    points,
    reproducibility,
    section,
    sensitivity_table,
    table,
    validation,
)
from analysis.report import SweepAnalysis

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1120px;margin:2em auto;color:#222;padding:0 1em;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.1em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{font-size:1em;margin:1.2em 0 .3em}.sub{color:#666;margin-top:0}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right;vertical-align:top}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}td.l,th.l{text-align:left}
.fig{margin:.6em 0 1.4em;overflow-x:auto}.fig svg{max-width:100%;height:auto}
figcaption{color:#555;font-size:.85em;margin-top:.2em}
.violation{color:#b00020;font-weight:bold}.warn{color:#a66a00}.ok{color:#176b1e}
pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:.8em}.muted{color:#777}
.status{border-left:6px solid #888;background:#f6f6f6;padding:.6em 1em;margin:1em 0}
.status b{font-size:1.15em}.status.completed{border-color:#2e7d32;background:#f1f8f1}
.status.cancelled,.status.timed_out{border-color:#c62828;background:#fdf0f0}
.cards{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #ddd;border-radius:6px;padding:.8em 1em;flex:1 1 420px}
.card ul{margin:.3em 0}.blocks{display:flex;flex-wrap:wrap;gap:0 2em;align-items:flex-start}
.card .value{font-size:1.6em;font-weight:600}.card .metric{color:#555}.card table{font-size:.8em}
.badge{display:inline-block;border-radius:3px;padding:0 .4em;font-size:.8em;margin-left:.4em}
.badge.yes{background:#e3f2e3;color:#176b1e}.badge.no{background:#fde7e7;color:#b00020}
details{margin:1em 0}summary{cursor:pointer;font-weight:600}
"""
SENSITIVITY = "Which parameters matter?"


def _figure(svg: str | None, caption: str) -> str:
    if not svg:
        return ""
    return (
        f'<figure class="fig" role="img" aria-label="{html.escape(caption)}">{svg}'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


# -- the answer -----------------------------------------------------------------------------------


def _status(result: SweepAnalysis) -> str:
    title, sentence = narrative.status_line(result)
    state = result.outcome.get("state") or "unknown"
    return (
        f'<div class="status {html.escape(state)}"><b>{html.escape(title)}</b> · {html.escape(sentence)}'
        f"<br>{html.escape(narrative.runs_line(result))}</div>"
    )


def _best_card(entry: dict[str, Any], varied: list[str]) -> str:
    feasible = entry.get("feasible")
    badge = (
        ""
        if feasible is None
        else f'<span class="badge {"yes" if feasible else "no"}">{"feasible" if feasible else "infeasible"}</span>'
    )
    blocks = [
        f"<div><h3>{title}</h3>{table(rows, columns)}</div>"
        for title, rows, columns in narrative.best_tables(entry, varied)
    ]
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in narrative.best_lines(entry))
    return (
        f'<div class="card"><div class="metric">{html.escape(entry["metric"])} ({html.escape(entry["goal"])}), '
        f"{html.escape(entry['project'])}{badge}</div>"
        f'<div class="value">{escaped(entry["mean"])}</div><ul>{lines}</ul>'
        f'<div class="blocks">{"".join(blocks)}</div></div>'
    )


def _answer(result: SweepAnalysis) -> str:
    entries = result.best.get("objectives") or []
    feasibility = narrative.feasibility_line(result)
    counts = result.validation.get("counts", {})
    problems = counts.get("violation", 0) + counts.get("warn", 0)
    parts = [_status(result)]
    if entries:
        parts.append("<h2>Best configuration</h2>")
        varied = result.sweep["varied"]
        if result.outcome.get("state") in ("cancelled", "timed_out"):
            parts.append('<p class="muted">The best of the runs made before the sweep stopped.</p>')
        parts.append('<div class="cards">' + "".join(_best_card(e, varied) for e in entries) + "</div>")
    elif not result.sweep["objectives"]:
        parts.append('<p class="muted">No objective declared: the figures show the first metrics.</p>')
    if feasibility:
        parts.append(f"<p>{html.escape(feasibility)}</p>")
    if result.fidelity:
        parts.append(f'<p class="muted">{html.escape(fidelity.analysed_line(result.fidelity))}</p>')
    parts += [f"<p>{html.escape(line)}</p>" for line in fidelity.answer_lines(result.fidelity)]
    if problems:
        parts.append(
            f'<p class="violation">Validation: {counts.get("violation", 0)} violation(s), '
            f"{counts.get('warn', 0)} warning(s); see Validation below.</p>"
        )
    return "".join(parts)


# -- figures --------------------------------------------------------------------------------------


def _bars(groups: Any, metric: str, level: int) -> str:
    used = groups.loc[(groups["metric"] == metric) & groups["ci_low"].notna(), "method"].unique()
    if not len(used):
        return "Point means (hollow: no interval, as every point ran once and reports no standard error)."
    how = "; ".join(narrative.METHOD_WORDS.get(m, m) for m in sorted(used))
    return f"Point means with {level} % intervals ({how}); hollow: no interval."


def figure_list(result: SweepAnalysis) -> list[tuple[str, str, str]]:
    """(question, caption, svg) of every figure that applies to this sweep, in report order.

    Convergence only for adaptive sweeps: a grid's or a sample's order is no one's choice.
    """
    groups = result.groups_frame()
    s = result.sweep
    varied = [f"param.{p}" for p in s["varied"]]
    objectives = s["objectives"] or [{"metric": m, "goal": "maximize"} for m in s["metrics"][:3]]
    best = {e["metric"]: e for e in result.best.get("objectives", [])}
    importance = list(dict.fromkeys(i["parameter"] for i in result.sensitivity.get("indices", [])))
    level = round(100 * float(groups["confidence"].iloc[0])) if len(groups) else 95
    out: list[tuple[str, str, str | None]] = []
    if not groups.empty:
        for o in objectives[:4]:
            metric = o["metric"]
            out.append(
                (
                    f"How does {metric} change with each parameter?",
                    _bars(groups, metric, level)
                    + (
                        " Lines: the mean over the other parameters at each level."
                        if s.get("design") == "grid"
                        else ""
                    )
                    + " Star: the best point.",
                    figures.metric_vs_parameters(groups, metric, varied, best.get(metric)),
                )
            )
        first = objectives[0]
        found = landscape.view(groups, first["metric"], varied, best.get(first["metric"]), importance)
        if found:
            kind, drawn = found
            caption = {
                "heatmap": "Heatmaps of the point means over each pair of parameters (averaged over the others).",
                "contour": "Contours of a Gaussian process fitted to the point means, the other parameters "
                "held at the best point; dots: the points run.",
            }.get(kind, "Heatmaps where the pair was run on a grid, GP contours elsewhere.")
            out.append((f"Where is {first['metric']} best?", caption + " Star: the best point.", drawn))
        out.append(
            (
                "How do the parameters combine in the best points?",
                f"One line per point, coloured by {first['metric']}; each axis spans the values run.",
                landscape.parallel_coordinates(
                    groups, first["metric"], first["goal"], varied, best.get(first["metric"])
                ),
            )
        )
    if s.get("adaptive_sampling"):
        out.append(
            (
                "Did the optimizer beat random order?",
                "Best so far against runs, wall time and cost; dashed: the expected best of random order "
                "drawn from the space-filling start (dotted line: its end).",
                figures.convergence(result.convergence),
            )
        )
    sensitivity_svg, with_intervals = figures.sensitivity(result.sensitivity.get("indices", []))
    out.append(
        (
            SENSITIVITY,
            "Variance shares (Sobol' indices): first-order (alone) and total (with interactions)"
            + (
                ", with their intervals."
                if with_intervals
                else "; point estimates, as one run per point leaves nothing to resample."
            ),
            sensitivity_svg,
        )
    )
    curves = result.intermediate
    out.append(
        (
            "Did early stopping stop the right runs?",
            f"The values each run reported ({curves.get('stopped', 0)} of {curves.get('total', 0)} stopped early"
            + "".join(
                f" by the {r} rule"
                for r in sorted({r["rule"] for r in curves.get("runs", []) if r["rule"]})[:1]
            )
            + "; crosses where they stopped).",
            figures.intermediate(curves),
        )
    )
    out.append(
        (
            "What does each objective cost the other?",
            "Point means; the front in red.",
            figures.pareto(result.pareto),
        )
    )
    if not groups.empty:
        out.append(
            (
                "Do the projects differ?",
                "Each compared metric per project with its intervals.",
                figures.cross_project(groups, result.cross_project.get("metrics", []), varied),
            )
        )
    return [(q, c, drawn) for q, c, drawn in out if drawn]


def _ladder(result: SweepAnalysis) -> str:
    """The fidelity ladder's section: rungs, each rung against the top, the best's ranks, the figure."""
    section = result.fidelity
    if not section:
        return ""
    tables = fidelity.tables(section)
    parts = ["<h2>Fidelity ladder</h2>", f"<p>{html.escape(fidelity.intro(section))}</p>"]
    if not section["pairs"]:
        parts.append(f'<p class="muted">{fidelity.NOTHING_YET}</p>')
    for title, rows, columns in tables:
        parts.append(
            f"<h3>{html.escape(title)}</h3>{table(rows, columns, left=('metric', 'project', 'device'))}"
        )
    parts += [f"<p>{html.escape(fidelity.best_line(entry))}</p>" for entry in section["best"]]
    drawn = figures.fidelity(section)
    parts.append("<h3>Does each rung read as the top one?</h3>" if drawn else "")
    parts.append(
        _figure(
            drawn,
            "Each shared point's value on a lower rung against the top rung's, one colour per rung; "
            "points above the dashed line y = x read higher than the top.",
        )
    )
    return "".join(parts)


def to_html(result: SweepAnalysis) -> str:
    """One self-contained HTML document: styles and figures inline, nothing fetched."""
    s = result.sweep
    figs = "".join(
        f"<h2>{html.escape(q)}</h2>{_figure(drawn, c)}"
        + (sensitivity_table(result) if q == SENSITIVITY else "")
        for q, c, drawn in figure_list(result)
    )
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(s['name'])}: sweep report</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(s['name'])}</h1>",
        f'<p class="sub">sweep {html.escape(s["id"])} · {html.escape(narrative.design_words(result))} · '
        f"generated {html.escape(s['generated_at'])}</p>",
        _answer(result),
        _ladder(result),
        figs,
        points(result),
        failures(result),
        comparisons(result),
        validation(result),
        section("Reproducibility", reproducibility(result)),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)
