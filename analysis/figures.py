"""The report's figures: matplotlib on the Agg backend, returned as inline SVG text.

Each function answers one question about the sweep, takes plain data (the analysis' tables) and
returns ``None`` when it has nothing to draw, so the report shows only what applies. Titles are
the report's headings, not the figure's: nothing is drawn above the axes to collide with them.
The 2-D views and parallel coordinates are in :mod:`analysis.landscape`.
"""

from __future__ import annotations

import io
import re
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit: the report is built on servers too

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from analysis.fidelity import device_label  # noqa: E402

plt.rcParams.update(
    {
        "svg.fonttype": "none",
        "text.parse_math": False,  # names from the results are text: `$\\undefined{$` must not be TeX
        "figure.dpi": 100,
        "font.size": 10,
        "axes.titlesize": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.fontsize": 8,
        "legend.frameon": False,
    }
)
MAX_PANELS = 6
LAYOUT = "tight"  # one pass of bounding boxes; "constrained" took twice as long on a 6-panel figure
PER_ROW = 3
PANEL = (3.6, 2.9)  # inches per panel: three across a page are still legible
DENSE = 150  # beyond this many points a panel shows dots, not error bars
_MAX_DOTS = 4_000  # points drawn per scatter: more add time and bytes, not information
_LEVELS = 25  # a parameter with at most this many values is treated as levels of a grid
BEST = {"marker": "*", "color": "crimson", "ms": 13, "mec": "white", "mew": 0.8, "zorder": 5}


def thin(n: int, most: int = _MAX_DOTS) -> np.ndarray:
    """Indices of at most ``most`` of ``n`` points, evenly spread, first and last kept."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).astype(int)) if n else np.array([], dtype=int)


def svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    # Drop the XML prolog and DOCTYPE (which names a URL): the SVG is inlined in HTML.
    return re.sub(r"^.*?(<svg)", r"\1", text, count=1, flags=re.S)


def panels(n: int, size: tuple[float, float] = PANEL, **kwargs: Any) -> tuple[Any, list[Any]]:
    """A figure of ``n`` panels, at most :data:`PER_ROW` across; unused cells removed."""
    cols = min(n, PER_ROW)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False, layout=LAYOUT, **kwargs
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.remove()
    return fig, flat[:n]


def is_levels(values: pd.Series) -> bool:
    """A parameter set on a few levels (a grid, or categories), not a continuous sample."""
    return values.nunique() <= _LEVELS or not pd.api.types.is_numeric_dtype(values)


def name(column: str) -> str:
    return column.removeprefix("param.")


def level_ticks(ax: Any, positions: list[float], labels: list[str], axis: str = "x") -> None:
    """Ticks at a parameter's levels; every k-th label when there are many, slanted when long."""
    step = max(1, -(-len(labels) // 8))
    shown = [label if i % step == 0 else "" for i, label in enumerate(labels)]
    (ax.set_xticks if axis == "x" else ax.set_yticks)(positions, shown)
    if axis == "x" and sum(len(label) for label in shown) > 40:
        ax.tick_params(axis="x", labelrotation=30)
        for text in ax.get_xticklabels():
            text.set_horizontalalignment("right")


def tick_label(value: Any, width: int = 14) -> str:
    """A level as a tick label: one line, at most ``width`` characters."""
    text = " ".join(f"{value:.3g}".split()) if isinstance(value, float) else " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _positions(values: pd.Series) -> tuple[pd.Series, pd.Series, list[float], list[str]]:
    """Where each point goes on a parameter's axis: ``(x, level x, ticks, labels)``.

    A continuous parameter is its own value. Levels (a grid, categories) are spread a little
    around their tick, so the points of one level (other parameters differing) do not hide each
    other, and a category gets a position of its own.
    """
    if not is_levels(values):
        return values, values, [], []
    levels = sorted(values.dropna().unique(), key=lambda v: (isinstance(v, str), v))
    numeric = pd.api.types.is_numeric_dtype(values)
    where = {v: (float(v) if numeric else float(i)) for i, v in enumerate(levels)}
    base = values.map(where).astype(float)
    ticks = [where[v] for v in levels]
    gap = float(np.min(np.diff(ticks))) if len(ticks) > 1 else 1.0
    rank = values.groupby(values).cumcount()
    size = values.groupby(values).transform("size")
    spread = np.where(size > 1, rank / (size - 1).clip(lower=1) - 0.5, 0.0)
    # many numeric levels read better on the usual axis than one tick each
    labels = [] if numeric and len(levels) > 8 else [tick_label(v) for v in levels]
    return base + spread * 0.25 * gap, base, ticks, labels


def _points(ax: Any, x: pd.Series, part: pd.DataFrame, color: str, label: str | None) -> None:
    """One project's point means: with their interval bars, hollow without one, and plain dots
    when there are too many for bars to say anything (drawn as an inline bitmap)."""
    if len(part) > DENSE:
        dots = thin(len(part))
        ax.plot(x.iloc[dots], part["mean"].iloc[dots], ".", ms=2, alpha=0.35, color=color, rasterized=True)
        return
    has = part["ci_low"].notna() & part["ci_high"].notna()
    lower = (part["mean"] - part["ci_low"]).clip(lower=0)
    upper = (part["ci_high"] - part["mean"]).clip(lower=0)
    ax.errorbar(
        x[has],
        part["mean"][has],
        yerr=[lower[has], upper[has]],
        fmt="o",
        ms=3.5,
        capsize=2,
        elinewidth=0.9,
        alpha=0.6,
        color=color,
        label=label,
    )
    if (~has).any():
        ax.plot(x[~has], part["mean"][~has], "o", ms=3.5, mfc="none", color=color, alpha=0.6)


def metric_vs_parameters(
    groups: pd.DataFrame, metric: str, varied: list[str], best: dict[str, Any] | None = None
) -> str | None:
    """How does the metric change with each parameter? Point means with their intervals.

    Bars are the groups' intervals (repeats, Wilson, or the project's reported standard error);
    a point without one is drawn hollow. On a grid a line joins the mean over the other
    parameters at each level; a continuous sample gets no line (it would zig-zag).
    """
    data = groups[(groups["metric"] == metric) & groups["mean"].notna()]
    params = [p for p in varied if p in data and data[p].notna().any()][:MAX_PANELS]
    if data.empty or not params:
        return None
    is_best = pd.Series(best is not None, index=data.index)
    if best is not None:
        is_best &= data["project"] == best["project"]
        for p in params:
            is_best &= data[p] == best["parameters"].get(name(p))
    fig, axes = panels(len(params), sharey=True)
    several = data["project"].nunique() > 1
    for ax, param in zip(axes, params, strict=True):
        x_all, level_all, ticks, labels = _positions(data[param])
        for i, (project, part) in enumerate(data.groupby("project", sort=True)):
            color, x = f"C{i}", x_all[part.index]
            _points(ax, x, part, color, project if several else None)
            if ticks:
                marginal = part.groupby(level_all[part.index], sort=True)["mean"].mean()
                if len(marginal) > 1:
                    ax.plot(marginal.index, marginal.to_numpy(), "-", lw=1.4, color=color, alpha=0.8)
        if labels:
            level_ticks(ax, ticks, labels)
        if is_best.any():
            ax.plot(x_all[is_best].iloc[:1], data.loc[is_best, "mean"].iloc[:1], **BEST)
        ax.set_xlabel(name(param))
    axes[0].set_ylabel(metric)
    if several:
        axes[0].legend()
    return svg(fig)


def convergence(traces: dict[str, Any]) -> str | None:
    """Did the optimizer find good points sooner than random order would have?"""
    traces = {m: t for m, t in traces.items() if t["value"]}
    if not traces:
        return None
    axes_spec = [("runs", "runs"), ("elapsed_seconds", "wall time (s)")]
    if any(t["cumulative_cost"] and (t["cumulative_cost"][-1] or 0) > 0 for t in traces.values()):
        axes_spec.append(("cumulative_cost", "cost (USD)"))  # free sweeps: no cost axis
    fig, flat = panels(len(traces) * len(axes_spec), size=(4.0, 3.0))
    for row, (metric, t) in enumerate(traces.items()):
        n = len(t["value"])
        # what a figure can show: a sample of the runs, and the best-so-far line where it moves
        sample = thin(n)
        best = np.asarray(t["best"], dtype=float)
        moves = np.union1d(np.flatnonzero(np.r_[True, best[1:] != best[:-1]]), [n - 1])
        for col, (xkey, label) in enumerate(axes_spec):
            ax = flat[row * len(axes_spec) + col]
            x = np.asarray(t[xkey], dtype=float)
            values = np.asarray(t["value"], dtype=float)
            ax.plot(
                x[sample],
                values[sample],
                ".",
                ms=4,
                alpha=0.4,
                color="grey",
                rasterized=n > DENSE,
                label="run",
            )
            ax.step(x[moves], best[moves], where="post", color="C0", lw=1.6, label="best so far")
            if t["random_order_best"] and xkey == "runs":
                reference = np.asarray(t["random_order_best"], dtype=float)[sample]
                ax.plot(x[sample], reference, "--", color="C1", label="random order (expected)")
                if t.get("random_order_pool"):
                    ax.axvline(t["random_order_pool"] + 0.5, color="0.7", lw=0.8, ls=":")
            ax.set_xlabel(label)
            ax.set_ylabel(f"{metric} ({t['goal']})" if col == 0 else "")
    handles, labels = flat[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=3
    )  # below, outside the axes
    return svg(fig)


def sensitivity(indices: list[dict[str, Any]]) -> tuple[str | None, bool]:
    """Which parameters matter? First-order and total indices per (project, metric).

    Returns:
        ``(svg, with_intervals)``: bars carry whiskers only where the analysis has intervals.
    """
    if not indices:
        return None, False
    frame = pd.DataFrame(indices)
    keys = list(frame.groupby(["project", "metric"], sort=False).groups)[:MAX_PANELS]
    n_params = frame["parameter"].nunique()
    fig, axes = panels(len(keys), size=(4.2, 0.9 + 0.45 * n_params))
    with_intervals = False
    for ax, key in zip(axes, keys, strict=True):
        part = frame[(frame["project"] == key[0]) & (frame["metric"] == key[1])].iloc[::-1]
        y = np.arange(len(part))
        for offset, column in ((0.18, "first_order"), (-0.18, "total")):
            values = part[column].to_numpy(float)
            ci = np.array(
                [c if c and c[0] is not None else [np.nan, np.nan] for c in part[f"{column}_ci"]], float
            )
            known = ~np.isnan(ci).any(axis=1)
            with_intervals |= bool(known.any())
            err = np.where(known, [values - ci[:, 0], ci[:, 1] - values], 0.0).clip(min=0)
            ax.barh(
                y + offset,
                values,
                height=0.34,
                label=column.replace("_", "-"),
                xerr=err if known.any() else None,
            )
        ax.set_yticks(y, part["parameter"])
        ax.axvline(0, color="black", lw=0.6)
        ax.set_xlabel("share of variance")
        ax.set_title(f"{key[1]} ({key[0]}, {part['method'].iloc[0]})", loc="left")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=2
    )  # below, outside the axes
    return svg(fig), with_intervals


def pareto(result: dict[str, Any]) -> str | None:
    """What does each objective cost the other? The first two objectives' front."""
    if not result.get("front"):
        return None
    a, b = (o["metric"] for o in result["objectives"][:2])
    fig, ax = plt.subplots(figsize=(5.0, 3.8), layout=LAYOUT)
    dominated = [result["dominated"][i] for i in thin(len(result["dominated"]))]
    ax.plot(
        [p["values"][a] for p in dominated],
        [p["values"][b] for p in dominated],
        ".",
        color="grey",
        alpha=0.5,
        label="dominated",
        rasterized=len(dominated) > DENSE,
    )
    front = sorted(result["front"], key=lambda p: p["values"][a])
    ax.plot(
        [p["values"][a] for p in front],
        [p["values"][b] for p in front],
        "o-",
        color="crimson",
        label=f"Pareto front (hypervolume {result['hypervolume']:.4g})",
    )
    ax.set_xlabel(f"{a} ({result['objectives'][0]['goal']})")
    ax.set_ylabel(f"{b} ({result['objectives'][1]['goal']})")
    ax.legend()
    return svg(fig)


def cross_project(groups: pd.DataFrame, metrics: list[str], varied: list[str]) -> str | None:
    """Do the projects differ? Each compared metric per project, with intervals."""
    if not metrics or not varied:
        return None
    x = varied[0]
    fig, axes = panels(len(metrics[:MAX_PANELS]), size=(4.2, 3.0))
    for ax, metric in zip(axes, metrics, strict=False):
        part = groups[groups["metric"] == metric]
        for project, rows in part.groupby("project"):
            rows = rows.groupby(x).agg(
                mean=("mean", "mean"), low=("ci_low", "mean"), high=("ci_high", "mean")
            )
            err = [
                (rows["mean"] - rows["low"]).clip(lower=0).fillna(0),
                (rows["high"] - rows["mean"]).clip(lower=0).fillna(0),
            ]
            ax.errorbar(rows.index, rows["mean"], yerr=err, fmt="o-", capsize=3, label=project)
        ax.set_xlabel(name(x))
        ax.set_ylabel(metric)
        ax.legend()
    return svg(fig)


def intermediate(curves: dict[str, Any]) -> str | None:
    """Did early stopping stop the right runs? Each run's reported values, stops marked."""
    runs = curves.get("runs") or []
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(7.0, 3.6), layout=LAYOUT)
    labelled: set[str] = set()
    for run in sorted(runs, key=lambda r: r["stopped_at"] is not None):  # stopped ones on top
        values = np.asarray(run["values"], dtype=float)
        steps = np.arange(1, len(values) + 1)
        stopped = run["stopped_at"] is not None
        kind = "stopped early" if stopped else "ran to the end"
        ax.plot(
            steps,
            values,
            "-",
            lw=1.0,
            alpha=0.8 if stopped else 0.45,
            color="C3" if stopped else "C0",
            label=None if kind in labelled else kind,
        )
        labelled.add(kind)
        if stopped:
            ax.plot([steps[-1]], [values[-1]], "x", color="C3", ms=7, mew=1.6)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("reported step")
    ax.set_ylabel(f"{curves['metric']} ({curves.get('goal', 'reported')})")
    ax.legend(loc="upper right" if curves.get("goal") == "minimize" else "lower right")
    return svg(fig)


def fidelity(section: dict[str, Any]) -> str | None:
    """Does each cheap rung read as the top one? Each shared point's value on a lower rung against
    the top's, one colour per rung, with the line y = x where a rung without bias would lie."""
    points = section.get("points") or []
    if not points:
        return None
    frame = pd.DataFrame(points)
    keys = list(frame.groupby(["project", "metric"], sort=False).groups)[:MAX_PANELS]
    fig, axes = panels(len(keys), size=(4.0, 3.6))
    rungs = sorted(frame["rung"].unique())
    for ax, (project, metric) in zip(axes, keys, strict=True):
        part = frame[(frame["project"] == project) & (frame["metric"] == metric)]
        for rung, rows in part.groupby("rung", sort=True):
            ax.plot(
                rows["top_value"],
                rows["value"],
                "o",
                ms=4,
                alpha=0.75,
                color=f"C{rungs.index(rung)}",
                label=f"rung {rung}: {device_label(rows['device'].iloc[0])}",
            )
        low = float(np.nanmin(part[["value", "top_value"]].to_numpy()))
        high = float(np.nanmax(part[["value", "top_value"]].to_numpy()))
        ax.plot([low, high], [low, high], "--", color="0.5", lw=1, label="y = x (no bias)")
        top = device_label(part["top_device"].iloc[0])
        ax.set_xlabel(f"{metric} on rung {part['top'].iloc[0]} ({top})")
        ax.set_ylabel(f"{metric} on the lower rung")
        if frame["project"].nunique() > 1:
            ax.set_title(project, loc="left")
        ax.legend()
    return svg(fig)
