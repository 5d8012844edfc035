"""The sentences both reports open with (HTML and Markdown): how the sweep ended, what ran, what
is best. Plain text; each renderer escapes it for its own format."""

from __future__ import annotations

from typing import Any

from analysis.report import SweepAnalysis

STATE_TITLES = {
    "completed": "Completed",
    "cancelled": "Cancelled",
    "timed_out": "Timed out",
    None: "State unknown",
}
_STATUS_ORDER = ("completed", "failed", "early_stopped", "cancelled", "partial")
METHOD_WORDS = {
    "t": "Student's t over repeats",
    "wilson": "Wilson, shots pooled",
    "bootstrap": "bootstrap over repeats",
    "reported": "the project's reported standard error",
}


def number(value: Any) -> str:
    """A number for people: 4 significant digits, thousands separated; '–' for none."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e5 and value.is_integer() else f"{value:.4g}"
    return str(value)


def text(value: Any) -> str:
    """Any table value as text: numbers as :func:`number`, mappings as ``k=v, ...``."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "[" + ", ".join(text(v) for v in value) + "]"
    return number(value)


def interval(entry: dict[str, Any]) -> str:
    """``[low, high]`` of a group or best entry, or '–' (one run, no reported error)."""
    if entry.get("ci_low") is None or entry.get("ci_high") is None:
        return "–"
    return f"[{number(entry['ci_low'])}, {number(entry['ci_high'])}]"


def status_line(result: SweepAnalysis) -> tuple[str, str]:
    """(title, sentence): 'Cancelled', 'cancelled by a user ...; 6 of 50 experiments ran.'"""
    outcome = result.outcome
    state = outcome.get("state")
    counts = result.summary.get("status_counts", {})
    ran = sum(counts.values())
    parts = [str(outcome.get("reason") or "")]
    total = outcome.get("total")
    if state is not None and total:
        parts.append(f"{number(ran)} of {number(total)} planned experiments have a result")
    return STATE_TITLES.get(state, str(state)), "; ".join(p for p in parts if p) + "."


def runs_line(result: SweepAnalysis) -> str:
    """'48 runs (46 completed, 2 failed); no cost; 12.3 s wall time, 40.1 s of runs.'"""
    counts = result.summary.get("status_counts", {})
    named = [s for s in _STATUS_ORDER if counts.get(s)] + sorted(set(counts) - set(_STATUS_ORDER))
    listed = ", ".join(f"{number(counts[s])} {s.replace('_', ' ')}" for s in named)
    never = result.outcome.get("never_started")
    if never:
        listed += f", {number(never)} never started"
    summary_time = result.summary.get("time", {})
    cost = result.summary.get("cost") or 0
    return (
        f"{number(result.summary.get('rows', 0))} runs ({listed or 'none'}); "
        + (f"cost ${cost:,.2f}; " if cost else "no cost; ")
        + f"{number(summary_time.get('wall_seconds'))} s wall time, "
        + f"{number(summary_time.get('run_seconds_total'))} s of runs."
    )


def feasibility_line(result: SweepAnalysis) -> str | None:
    """'12 of 40 points meet every constraint (fidelity >= 0.9), judged on their means.'"""
    info = result.best.get("feasibility") or {}
    if not info.get("constraints"):
        return None
    unknown = f"; {info['unknown']} lack a metric a constraint names" if info.get("unknown") else ""
    return (
        f"{number(info['feasible'])} of {number(info['points'])} points meet every constraint "
        f"({'; '.join(info['constraints'])}), judged on their means{unknown}."
    )


def best_lines(entry: dict[str, Any]) -> list[str]:
    """The details of one best configuration, one sentence each."""
    runs = f"{entry['n']} run{'s' if entry['n'] != 1 else ''}"
    if entry.get("ci_low") is None:
        lines = [f"{runs}; no interval (one run, and the project reports no standard error)"]
    else:
        level = round(100 * (entry.get("confidence") or 0.95))
        how = METHOD_WORDS.get(str(entry.get("method")), str(entry.get("method")))
        lines = [f"{runs}; {level} % interval {interval(entry)} ({how})"]
    if entry.get("feasible") is False:
        lines.append("no point meets every constraint: this is the best of the infeasible ones")
    if entry.get("indistinguishable") is not None:
        lines.append(
            f"{entry['indistinguishable']} other point(s) are not significantly different "
            "(Benjamini-Hochberg corrected)"
        )
    return lines


def best_tables(
    entry: dict[str, Any], varied: list[str]
) -> list[tuple[str, list[dict[str, Any]], list[str]]]:
    """A best point's tables, as ``(title, rows, columns)``: its parameters, the other metrics
    there, and the points next best (by their varied parameters)."""
    params = [{"parameter": k, "value": v} for k, v in entry["parameters"].items()]
    tables = [("parameters", params, ["parameter", "value"])]
    if entry.get("metrics"):
        rows = [
            {"metric": m, "mean": g["mean"], "interval": interval(g)} for m, g in entry["metrics"].items()
        ]
        tables.append(("other metrics here", rows, ["metric", "mean", "interval"]))
    if entry.get("runners_up"):
        shown = [p for p in entry["parameters"] if p in varied] or list(entry["parameters"])
        rows = [
            {**{p: r["parameters"].get(p) for p in shown}, "mean": r["mean"], "interval": interval(r)}
            for r in entry["runners_up"]
        ]
        tables.append(("next best", rows, [*shown, "mean", "interval"]))
    return tables


def design_words(result: SweepAnalysis) -> str:
    s = result.sweep
    design: str = {
        "adaptive": "adaptive (a Gaussian-process optimizer chose the order)",
        "sampled": "sampled (every sampled point run)",
        "grid": "grid",
    }.get(s.get("design") or "", s.get("design") or "")
    return f"{design}; varied: {', '.join(s['varied']) or 'nothing'}; projects: {', '.join(s['projects']) or '–'}"
