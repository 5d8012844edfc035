"""A fidelity ladder's rungs compared on the points run on both: how far a cheap rung reads from
the top one (the bias, with an interval), how much that gap varies from point to point, whether
the cheap rung orders the points as the top does, and which rung would have found the top's best.

Each rung below the top is paired with the top on the points both ran (a promoted point has one
row per rung: same project, repeat and parameters; its ``fidelity`` parameter is ignored). A
point's repeats are averaged first, so ``n`` counts points, not runs.

- bias: the mean of the paired differences ``rung - top``, with a Student-t interval over points;
- spread: the standard deviation of those differences (a constant offset has none);
- ranking: Spearman's rho, with a Fisher z interval using Bonett and Wright's (2000) standard
  error ``sqrt((1 + rho^2 / 2) / (n - 3))``.

Fewer than :data:`MIN_SHARED` shared points give no numbers, only that they are too few.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.dataset import METRIC, RUNG, SweepData

MIN_SHARED = 3  # below this a paired interval and a rank correlation say nothing
POINTS_KEPT = 2_000  # shared points per (project, metric) kept in the JSON for the figure
METHOD = (
    "bias: mean of the paired differences (rung - top) over the shared points, repeats averaged "
    "per point first, with a Student-t interval; spread: their standard deviation; ranking: "
    "Spearman's rho with a Fisher z interval (Bonett-Wright standard error)"
)

_PAIR_KEYS = ["project", "metric", "rung", "top", "n", "enough", "bias", "ci_low", "ci_high", "rho"]
#: JSON Schema of the section (the ``fidelity`` key of :data:`analysis.report.JSON_SCHEMA`)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pairs": {"type": "array", "items": {"type": "object", "required": _PAIR_KEYS}},
        "best": {"type": "array", "items": {"type": "object", "required": ["metric", "parameters", "ranks"]}},
        "rungs": {"type": "array", "items": {"type": "object", "required": ["project", "rung", "device"]}},
        "points": {"type": "array"},
    },
}


def device_label(device: Any) -> str:
    """A device as people name it: ``local:dm``, ``dm1``, ``the QPU Forte-1``."""
    text = str(device or "?")
    name = text.rsplit("/", 1)[-1] if text.startswith("arn:") else text
    return f"the QPU {name}" if "/qpu/" in text else name


def paired_gap(rung: np.ndarray, top: np.ndarray, confidence: float = 0.95) -> dict[str, Any]:
    """Bias, its interval, spread and rank correlation of ``rung`` against ``top`` (matched points)."""
    rung, top = np.asarray(rung, dtype=float), np.asarray(top, dtype=float)
    n = len(rung)
    out: dict[str, Any] = {
        "n": n,
        "enough": n >= MIN_SHARED,
        **dict.fromkeys(("bias", "ci_low", "ci_high", "spread", "rho", "rho_ci_low", "rho_ci_high")),
    }
    if n < MIN_SHARED:
        return out
    d = rung - top
    bias, spread = float(d.mean()), float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * spread / math.sqrt(n)
    out.update(bias=bias, ci_low=bias - half, ci_high=bias + half, spread=spread)
    if np.ptp(rung) == 0 or np.ptp(top) == 0:  # a constant side has no order to compare
        return out
    rho = float(stats.spearmanr(rung, top).statistic)
    out["rho"] = rho
    if n > 3 and abs(rho) < 1:  # Fisher z is infinite at |rho| = 1
        z, q = math.atanh(rho), float(stats.norm.ppf(0.5 + confidence / 2))
        se = math.sqrt((1 + rho**2 / 2) / (n - 3))
        out.update(rho_ci_low=math.tanh(z - q * se), rho_ci_high=math.tanh(z + q * se))
    return out


def fidelity_ladder(data: SweepData, confidence: float = 0.95) -> dict[str, Any]:
    """The ladder section of the analysis; ``{}`` for a sweep without a ladder.

    Returns:
        ``{"method", "confidence", "min_shared", "rungs", "pairs", "best", "points"}``: ``rungs``
        one entry per (project, rung) with its device, points, runs and cost, and whether the
        other sections analyse it (each project's top rung); ``pairs`` one entry per (project,
        lower rung, metric) as :func:`paired_gap` plus the devices; ``best`` per objective the
        top's best point and its rank on each lower rung; ``points`` the shared points'
        (value, top value) of the objectives, for the figure.
    """
    if not data.ladder:
        return {}
    ok = data.completed_all
    ok = ok[ok[RUNG].notna()]
    goals = {o["metric"]: o["goal"] for o in data.objectives}
    metrics = list(goals) + [
        m.removeprefix(METRIC) for m in data.metrics if m.removeprefix(METRIC) not in goals
    ]
    keys = list(data.parameters)
    section: dict[str, Any] = {
        "method": METHOD,
        "confidence": confidence,
        "min_shared": MIN_SHARED,
        "rungs": _rungs(data),
        "pairs": [],
        "best": [],
        "points": [],
    }
    for project, rows in ok.groupby("project_name", sort=True):
        columns = [f"{METRIC}{m}" for m in metrics if f"{METRIC}{m}" in rows]
        point = keys or ["project_name"]  # no parameters: the project's one point
        means = rows.groupby([RUNG, *point], dropna=False)[columns].mean()
        devices = rows.groupby(RUNG)["device"].agg(lambda d: d.mode().iloc[0] if d.notna().any() else None)
        rungs = sorted(int(r) for r in rows[RUNG].unique())
        at = {r: means.xs(r, level=RUNG) for r in rungs}
        top = rungs[-1]
        for metric in metrics:
            column = f"{METRIC}{metric}"
            if column not in means or len(rungs) < 2:
                continue
            high = at[top][column].dropna()
            for rung in rungs[:-1]:
                low = at[rung][column].dropna()
                shared = low.index.intersection(high.index)
                names = {
                    "project": project,
                    "metric": metric,
                    "rung": rung,
                    "device": devices.get(rung),
                    "top": top,
                    "top_device": devices.get(top),
                }
                gap = paired_gap(low[shared].to_numpy(), high[shared].to_numpy(), confidence)
                section["pairs"].append({**names, "objective": metric in goals, **gap})
                if metric in goals:
                    section["points"] += [
                        {
                            **names,
                            "parameters": _point(keys, p),
                            "value": float(low[p]),
                            "top_value": float(high[p]),
                        }
                        for p in shared[:POINTS_KEPT]
                    ]
            if metric in goals and len(high):
                section["best"].append(_best_at_top(project, metric, goals[metric], at, top, devices, keys))
    return section


def _point(keys: list[str], index: Any) -> dict[str, Any]:
    values = index if isinstance(index, tuple) else (index,)
    return {k.removeprefix("param."): _plain(v) for k, v in zip(keys, values, strict=False)}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _rungs(data: SweepData) -> list[dict[str, Any]]:
    frame = data.frame[data.frame[RUNG].notna()]
    analysed = set(zip(data.analysed["project_name"], data.analysed[RUNG], strict=True))
    out = []
    for (project, rung), rows in frame.groupby(["project_name", RUNG], sort=True):
        done = rows[rows["status"] == "completed"]
        devices = rows["device"].dropna()
        out.append(
            {
                "project": project,
                "rung": int(rung),
                "device": devices.mode().iloc[0] if len(devices) else None,
                "points": int(done.drop_duplicates(data.parameters).shape[0])
                if data.parameters
                else int(len(done) > 0),
                "runs": len(rows),
                "completed": len(done),
                "cost": float(pd.to_numeric(rows["cost"], errors="coerce").fillna(0).sum()),
                "analysed": (project, rung) in analysed,
            }
        )
    return out


def _best_at_top(
    project: str,
    metric: str,
    goal: str,
    at: dict[int, pd.DataFrame],
    top: int,
    devices: pd.Series,
    keys: list[str],
) -> dict[str, Any]:
    """The top's best point of ``metric`` and how each lower rung ranked it among its points."""
    column, maximize = f"{METRIC}{metric}", goal == "maximize"
    high = at[top][column].dropna()
    best = high.idxmax() if maximize else high.idxmin()
    ranks = []
    for rung, means in at.items():
        if rung == top:
            continue
        values = means[column].dropna()
        here = float(values[best]) if best in values.index else None
        better = None if here is None else int((values > here).sum() if maximize else (values < here).sum())
        ranks.append(
            {
                "rung": rung,
                "device": devices.get(rung),
                "rank": None if better is None else better + 1,
                "of": len(values),
                "value": here,
            }
        )
    found = next((r for r in ranks if r["rank"] == 1), None)
    return {
        "project": project,
        "metric": metric,
        "goal": goal,
        "parameters": _point(keys, best),
        "value": float(high[best]),
        "top": top,
        "top_device": devices.get(top),
        "ranks": ranks,
        "found_by": found["rung"] if found else None,
        "found_by_device": found["device"] if found else None,
    }


# -- words (plain text; each report escapes them) -------------------------------------------------


def _n(value: float) -> str:
    return f"{value:.3g}"


def gap_line(pair: dict[str, Any]) -> str:
    """'local:dm reads y 0.04 higher than the QPU Forte-1 (95% CI 0.02..0.06) on 12 shared
    points; it ranks points as the QPU Forte-1 does (rho 0.91, 95% CI 0.7..0.98).'"""
    rung, top, n = device_label(pair["device"]), device_label(pair["top_device"]), pair["n"]
    if not pair["enough"]:
        return (
            f"{rung} and {top} share {n} point{'s' if n != 1 else ''} of {pair['metric']}: too few "
            f"(fewer than {MIN_SHARED}) for a bias or a ranking."
        )
    level = "95%" if pair.get("confidence") is None else f"{round(100 * pair['confidence'])}%"
    ci = f"{level} CI {_n(pair['ci_low'])}..{_n(pair['ci_high'])}"
    if pair["ci_low"] > 0 or pair["ci_high"] < 0:
        side = "higher" if pair["bias"] > 0 else "lower"
        words = f"{rung} reads {pair['metric']} {_n(abs(pair['bias']))} {side} than {top} ({ci})"
    else:
        words = (
            f"{rung} reads {pair['metric']} as {top} does within the noise (bias {pair['bias']:+.3g}, {ci})"
        )
    return f"{words} on {n} shared points; {rank_words(pair, top)}."


def rank_words(pair: dict[str, Any], top: str) -> str:
    rho = pair["rho"]
    if rho is None:
        return "no ranking to compare (one side is constant)"
    how = (
        f"it ranks points as {top} does"
        if rho >= 0.8
        else f"it ranks points roughly as {top} does"
        if rho >= 0.5
        else f"its ranking agrees little with {top}'s"
        if rho >= 0
        else f"it ranks points against {top}'s order"
    )
    if pair["rho_ci_low"] is None:
        return f"{how} (rho {_n(rho)}; no interval with so few points or a perfect match)"
    unsure = ", an interval reaching 0: too few points to be sure" if pair["rho_ci_low"] <= 0 < rho else ""
    return f"{how} (rho {_n(rho)}, CI {_n(pair['rho_ci_low'])}..{_n(pair['rho_ci_high'])}{unsure})"


#: the section's text when no two rungs have results on a shared point
NOTHING_YET = "Only one rung has results: nothing to compare yet."


def intro(section: dict[str, Any]) -> str:
    """The section's opening sentence: the methods, and which rows the other sections read."""
    analysed = ", ".join(f"{r['project']} rung {r['rung']}" for r in section["rungs"] if r["analysed"])
    return (
        f"Each rung against the top one, on the points both ran ({section['method']}). "
        f"The other sections analyse only the top rung with results ({analysed})."
    )


def best_line(entry: dict[str, Any]) -> str:
    """'The best y on the QPU Forte-1 (0.81) ranked 1st of 40 on local:dm: local:dm found it.'"""
    top = device_label(entry["top_device"])
    ranks = "; ".join(
        ("not run" if r["rank"] is None else f"ranked {r['rank']} of {r['of']}")
        + f" on {device_label(r['device'])}"
        for r in entry["ranks"]
    )
    found = (
        f"{device_label(entry['found_by_device'])} already put it first"
        if entry["found_by"] is not None
        else "no lower rung put it first"
    )
    return f"The best {entry['metric']} on {top} ({_n(entry['value'])}, {entry['project']}) {ranks}: {found}."


def analysed_line(section: dict[str, Any]) -> str:
    """'On the fidelity ladder the best and every section but this one read the top rung with
    results: qaoa on the QPU Forte-1.'"""
    tops = "; ".join(
        f"{r['project']} on {device_label(r['device'])} (rung {r['rung']})"
        for r in section["rungs"]
        if r["analysed"]
    )
    return f"A fidelity ladder: the figures and tables read each ladder project's top rung with results ({tops}); the lower rungs are compared to it under Fidelity ladder."


def answer_lines(section: dict[str, Any]) -> list[str]:
    """The opening answer's lines: the first objective (else metric) of each ladder project, per
    lower rung."""
    pairs = section.get("pairs") or []
    first: dict[str, str] = {}
    for pair in pairs:
        first.setdefault(pair["project"], pair["metric"])
    chosen = [p for p in pairs if p["metric"] == first[p["project"]]]
    return [gap_line({**p, "confidence": section.get("confidence")}) for p in chosen]


def tables(section: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]], list[str]]]:
    """The section's tables as ``(title, rows, columns)``: the rungs, then one per (project, rung
    below the top) with a line per metric, objectives first."""
    level = f"{round(100 * section.get('confidence', 0.95))}% interval"
    rungs = [
        {**r, "device": device_label(r["device"]), "other sections": "analysed" if r["analysed"] else ""}
        for r in section.get("rungs", [])
    ]
    columns = ["project", "rung", "device", "points", "runs", "completed", "cost", "other sections"]
    out = [("Rungs", rungs, columns)]
    pairs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for pair in section.get("pairs", []):
        pairs.setdefault((pair["project"], pair["rung"]), []).append(pair)
    for (project, rung), lines in pairs.items():
        first = lines[0]
        title = (
            f"{device_label(first['device'])} (rung {rung}) against {device_label(first['top_device'])} "
            f"(rung {first['top']}), {project}"
        )
        rows = [
            {
                "metric": p["metric"] + (" (objective)" if p["objective"] else ""),
                "shared points": p["n"],
                "bias": p["bias"] if p["enough"] else f"too few shared points (< {MIN_SHARED})",
                level: _range(p["ci_low"], p["ci_high"]),
                "spread": p["spread"],
                "rho": p["rho"],
                "rho interval": _range(p["rho_ci_low"], p["rho_ci_high"]),
            }
            for p in lines
        ]
        out.append((title, rows, ["metric", "shared points", "bias", level, "spread", "rho", "rho interval"]))
    return out


def _range(low: float | None, high: float | None) -> str | None:
    return None if low is None or high is None else f"[{_n(low)}, {_n(high)}]"
