"""The report as Markdown, for a terminal, an issue or a lab notebook (no figures).

Everything from the results (names, parameter values, error messages) is escaped for CommonMark
and GitHub tables: HTML, ``|`` and line breaks cannot inject markup, a script, a heading or a
table cell, whichever renderer displays the file. Our own markup is the only markup.
"""

from __future__ import annotations

import json
import re
from typing import Any

from analysis import fidelity, narrative
from analysis.html_tables import SEVERITY, point_rows
from analysis.report import SweepAnalysis

# CommonMark lets any ASCII punctuation be backslash-escaped: these are the ones that start
# markup (emphasis, code, links, HTML, entities, headings, tables, strikethrough)
_SPECIAL = re.compile(r"([\\`*\[\]<>|&#!~])")
_EMPHASIS_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # p_correlated stays as is
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")
POINT_ROWS = 20


def escape(value: Any) -> str:
    """Text safe in a paragraph, a heading or a table cell: one line, no markup."""
    text = _LINE_BREAKS.sub(" ", narrative.text(value))
    text = _SPECIAL.sub(r"\\\1", text)
    return _EMPHASIS_UNDERSCORE.sub(r"\\_", text)


def code(value: Any) -> str:
    """An inline code span of ``value`` on one line: a fence longer than any run of backticks in it."""
    text = _LINE_BREAKS.sub(" ", str(value))
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_block(text: str, language: str = "") -> str:
    """A fenced code block: its content is literal, whatever it holds."""
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}{language}\n{text}\n{fence}\n"


def table(rows: list[dict[str, Any]], columns: list[str], limit: int = 30) -> str:
    """A GitHub table; every cell escaped (a ``|`` in a value stays in its cell)."""
    lines = ["| " + " | ".join(escape(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(escape(r.get(c)) for c in columns) + " |" for r in rows[:limit]]
    more = f"\n_{len(rows) - limit} more rows in the JSON report_\n" if len(rows) > limit else ""
    return "\n".join(lines) + "\n" + more


def _section(title: str, *parts: str) -> list[str]:
    body = [p for p in parts if p]
    return [f"## {escape(title)}\n", *body] if body else []


def _best(entry: dict[str, Any], varied: list[str]) -> list[str]:
    feasible = {True: " (feasible)", False: " (infeasible)", None: ""}[entry.get("feasible")]
    out = [
        f"### {escape(entry['metric'])} ({escape(entry['goal'])}), {escape(entry['project'])}: "
        f"**{escape(entry['mean'])}**{feasible}\n",
        "".join(f"- {escape(line)}\n" for line in narrative.best_lines(entry)),
    ]
    for title, rows, columns in narrative.best_tables(entry, varied):
        out += [f"{title.capitalize()}:\n", table(rows, columns)]
    return out


def to_markdown(result: SweepAnalysis) -> str:
    """The report in Markdown: the answer first, then the tables; the configuration collapsed."""
    s = result.sweep
    title, sentence = narrative.status_line(result)
    lines = [
        f"# {escape(s['name'])}\n",
        f"sweep {escape(s['id'])} · {escape(narrative.design_words(result))} · generated {escape(s['generated_at'])}\n",
        f"**{escape(title)}** · {escape(sentence)}\n",
        f"{escape(narrative.runs_line(result))}\n",
    ]
    entries = result.best.get("objectives") or []
    if entries:
        lines.append("## Best configuration\n")
        if result.outcome.get("state") in ("cancelled", "timed_out"):
            lines.append("The best of the runs made before the sweep stopped.\n")
        for entry in entries:
            lines += _best(entry, s["varied"])
    if feasibility := narrative.feasibility_line(result):
        lines.append(f"\n{escape(feasibility)}\n")
    if result.fidelity:
        lines.append(f"{escape(fidelity.analysed_line(result.fidelity))}\n")
    lines += [f"{escape(line)}\n" for line in fidelity.answer_lines(result.fidelity)]
    lines += _ladder(result)
    lines += _points(result)
    failures = result.summary.get("failures", [])
    lines += _section(
        "Failures by error class",
        table(
            [
                {
                    "error class": f["error_class"],
                    "count": f["count"],
                    "example": f["examples"][0]["message"] if f["examples"] else "",
                }
                for f in failures
            ],
            ["error class", "count", "example"],
        )
        if failures
        else "",
    )
    indices = result.sensitivity.get("indices", [])
    with_ci = any(i.get("first_order_ci") and i["first_order_ci"][0] is not None for i in indices)
    lines += _section(
        "Sensitivity" + (" (with intervals)" if with_ci else ""),
        table(
            indices,
            [
                "project",
                "metric",
                "parameter",
                "first_order",
                *(["first_order_ci"] if with_ci else []),
                "total",
            ]
            + (["total_ci"] if with_ci else []),
        )
        if indices
        else "",
    )
    lines += _section(
        "Pareto front",
        table(result.pareto.get("front", []), ["project", "parameters", "values"])
        if result.pareto.get("front")
        else "",
    )
    pairs = result.cross_project.get("pairs", [])
    configurations = [c for c in result.comparisons if c["kind"] == "configuration"]
    lines += _section(
        "Comparisons",
        table(pairs, ["metric", "a", "b", "mean_diff", "p_value", "p_adjusted", "effect_size", "significant"])
        if pairs
        else "",
        "\nEach point against the best (Benjamini-Hochberg corrected):\n\n"
        + table(
            sorted(configurations, key=lambda c: c["p_adjusted"] if c["p_adjusted"] is not None else 2),
            ["metric", "project", "parameters", "mean_diff", "p_adjusted", "significant"],
        )
        if configurations
        else "",
    )
    checks = result.validation.get("checks", [])
    rows = result.validation.get("rows", [])
    lines += _section(
        "Validation",
        table(
            sorted(checks, key=lambda c: SEVERITY[c["status"]]),
            ["project", "parameters", "metric", "expected", "measured", "status"],
        )
        if checks
        else "",
        table(rows, ["experiment_id", "project", "validation"]) if rows else "",
    )
    config = json.dumps(result.reproducibility.get("config", {}), indent=2)
    lines += [
        "## Reproducibility\n",
        f"{escape(result.reproducibility.get('reproducibility_hashes', {}).get('count'))} distinct reproducibility hashes; "
        + ", ".join(f"{escape(k)} {escape(v)}" for k, v in result.reproducibility.get("packages", {}).items())
        + "\n",
        "<details><summary>Effective configuration</summary>\n",
        code_block(config, "json"),
        "</details>\n",
    ]
    return "\n".join(lines)


def _points(result: SweepAnalysis) -> list[str]:
    metric, rows, columns = point_rows(result, POINT_ROWS)
    return _section(f"Points by {metric}, best first", table(rows, columns)) if rows else []


def _ladder(result: SweepAnalysis) -> list[str]:
    section = result.fidelity
    if not section:
        return []
    lines = ["## Fidelity ladder\n", f"{escape(fidelity.intro(section))}\n"]
    if not section["pairs"]:
        lines.append(f"{fidelity.NOTHING_YET}\n")
    for title, rows, columns in fidelity.tables(section):
        lines += [f"### {escape(title)}\n", table(rows, columns)]
    lines += [f"{escape(fidelity.best_line(entry))}\n" for entry in section["best"]]
    return lines
