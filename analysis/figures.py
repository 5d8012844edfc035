"""The report's figures: matplotlib on the Agg backend, returned as inline SVG text.

Each function takes plain data (the analysis' tables) and returns ``None`` when it has nothing to
draw, so the report shows only what applies to the sweep.
"""

from __future__ import annotations

import io
import itertools
import re
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit: the report is built on servers too

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# text.parse_math off: names come from sweep files, and a '$' in one made mathtext raise
plt.rcParams.update({"svg.fonttype": "none", "figure.dpi": 100, "font.size": 9, "text.parse_math": False})
_MAX_PARAMS = 6
_DENSE = 150
_MAX_DOTS = 4_000  # points drawn per scatter: more add time and bytes, not information


def _binned(values: pd.Series, bins: int = 10) -> pd.Series:
    """Values as they are when there are few; else the midpoints of quantile bins (for marginal
    lines and heatmaps of sampled, continuous parameters)."""
    if values.nunique() <= 25 or not pd.api.types.is_numeric_dtype(values):
        return values
    cut = pd.qcut(values, bins, duplicates="drop")
    return cut.map(lambda i: i.mid).astype(float)


def _thin(n: int) -> np.ndarray:
    """Indices of at most ``_MAX_DOTS`` of ``n`` points, evenly spread, first and last kept."""
    return np.unique(np.linspace(0, n - 1, min(n, _MAX_DOTS)).astype(int)) if n else np.array([], dtype=int)


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    # Drop the XML prolog and DOCTYPE (which names a URL): the SVG is inlined in HTML.
    return re.sub(r"^.*?(<svg)", r"\1", text, count=1, flags=re.S)


def metric_vs_parameters(groups: pd.DataFrame, metric: str, varied: list[str]) -> str | None:
    """The metric's point means with CI bars against each varied parameter, one panel each."""
    data = groups[groups["metric"] == metric]
    params = [p for p in varied if pd.api.types.is_numeric_dtype(data[p])][:_MAX_PARAMS] if len(data) else []
    if not params:
        return None
    fig, axes = plt.subplots(1, len(params), figsize=(3.2 * len(params), 2.8), squeeze=False, sharey=True)
    for ax, param in zip(axes[0], params, strict=True):
        for project, part in data.groupby("project"):
            if len(part) > _DENSE:  # thousands of bars say nothing; dots, drawn as an inline bitmap
                dots = part.iloc[_thin(len(part))]
                ax.plot(dots[param], dots["mean"], ".", ms=2, alpha=0.3, label=project, rasterized=True)
            else:
                lower = (part["mean"] - part["ci_low"]).clip(lower=0).fillna(0)
                upper = (part["ci_high"] - part["mean"]).clip(lower=0).fillna(0)
                ax.errorbar(
                    part[param], part["mean"], yerr=[lower, upper], fmt="o", ms=3, alpha=0.45, label=project
                )
            marginal = part["mean"].groupby(_binned(part[param])).mean()
            ax.plot(marginal.index, marginal.to_numpy(), "-", lw=1.5)
        ax.set_xlabel(param.removeprefix("param."))
    axes[0][0].set_ylabel(metric)
    if data["project"].nunique() > 1:
        axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"{metric}: point means with CI bars; lines are marginal means")
    return _svg(fig)


def heatmaps(groups: pd.DataFrame, metric: str, varied: list[str], limit: int = 3) -> str | None:
    """Mean of the metric over each pair of parameters (averaged over the others)."""
    data = groups[(groups["metric"] == metric)]
    pairs = list(itertools.combinations(varied[:_MAX_PARAMS], 2))[:limit]
    if data.empty or not pairs:
        return None
    fig, axes = plt.subplots(1, len(pairs), figsize=(3.6 * len(pairs), 3.0), squeeze=False)
    for ax, (x, y) in zip(axes[0], pairs, strict=True):
        table = data["mean"].groupby([_binned(data[y]), _binned(data[x])]).mean().unstack()
        image = ax.imshow(table.to_numpy(float), origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(
            range(len(table.columns)), [f"{v:.3g}" if isinstance(v, float) else v for v in table.columns]
        )
        ax.set_yticks(
            range(len(table.index)), [f"{v:.3g}" if isinstance(v, float) else v for v in table.index]
        )
        ax.tick_params(axis="x", labelrotation=45)
        ax.set_xlabel(x.removeprefix("param."))
        ax.set_ylabel(y.removeprefix("param."))
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(f"{metric}: mean over the other parameters")
    return _svg(fig)


def convergence(traces: dict[str, Any]) -> str | None:
    """Best-so-far against runs, wall time and cost; the random-order reference when known."""
    if not traces:
        return None
    axes_spec = [("runs", "runs"), ("elapsed_seconds", "wall time (s)")]
    if any(t["cumulative_cost"] and (t["cumulative_cost"][-1] or 0) > 0 for t in traces.values()):
        axes_spec.append(("cumulative_cost", "cost (USD)"))  # free sweeps: no cost axis
    fig, axes = plt.subplots(
        len(traces), len(axes_spec), figsize=(3.4 * len(axes_spec), 2.8 * len(traces)), squeeze=False
    )
    for row, (metric, t) in zip(axes, traces.items(), strict=True):
        n = len(t["value"])
        # what a figure can show: a sample of the runs, and the best-so-far line where it moves
        sample = _thin(n)
        best = np.asarray(t["best"], dtype=float)
        moves = np.union1d(np.flatnonzero(np.r_[True, best[1:] != best[:-1]]), [n - 1]) if n else sample
        for ax, (xkey, label) in zip(row, axes_spec, strict=True):
            x = np.asarray(t[xkey], dtype=float)
            values = np.asarray(t["value"], dtype=float)
            ax.plot(x[sample], values[sample], ".", ms=3, alpha=0.35, color="grey", rasterized=n > _DENSE)
            ax.step(x[moves], best[moves], where="post", label="best so far")
            if t["random_order_best"] and xkey == "runs":
                reference = np.asarray(t["random_order_best"], dtype=float)[sample]
                ax.plot(x[sample], reference, "--", label="random order (expected)")
            ax.set_xlabel(label)
        row[0].set_ylabel(f"{metric} ({t['goal']})")
        row[0].legend(fontsize=7, loc="best" if n <= _DENSE else "lower right")
    fig.tight_layout()
    fig.suptitle("convergence")
    return _svg(fig)


def sensitivity(indices: list[dict[str, Any]]) -> str | None:
    """First-order and total indices with their intervals, per (project, metric)."""
    if not indices:
        return None
    frame = pd.DataFrame(indices)
    keys = list(frame.groupby(["project", "metric"], sort=False).groups)
    fig, axes = plt.subplots(
        1, len(keys), figsize=(4 * len(keys), 0.5 + 0.4 * frame["parameter"].nunique() + 1.5), squeeze=False
    )
    for ax, key in zip(axes[0], keys, strict=True):
        part = frame[(frame["project"] == key[0]) & (frame["metric"] == key[1])].iloc[::-1]
        y = np.arange(len(part))
        for offset, name in ((0.18, "first_order"), (-0.18, "total")):
            values = part[name].to_numpy(float)
            ci = np.array(
                [
                    c if c and c[0] is not None else [v, v]
                    for c, v in zip(part[f"{name}_ci"], values, strict=True)
                ],
                float,
            )
            ax.barh(
                y + offset,
                values,
                height=0.34,
                label=name.replace("_", "-"),
                xerr=[np.clip(values - ci[:, 0], 0, None), np.clip(ci[:, 1] - values, 0, None)],
            )
        ax.set_yticks(y, part["parameter"])
        ax.axvline(0, color="black", lw=0.6)
        ax.set_title(f"{key[1]} ({key[0]}, {part['method'].iloc[0]})", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("sensitivity (variance share, with intervals)")
    return _svg(fig)


def pareto(result: dict[str, Any]) -> str | None:
    """The first two objectives: dominated points grey, the front highlighted."""
    if not result.get("front"):
        return None
    a, b = (o["metric"] for o in result["objectives"][:2])
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    dominated = [result["dominated"][i] for i in _thin(len(result["dominated"]))]
    ax.plot(
        [p["values"][a] for p in dominated],
        [p["values"][b] for p in dominated],
        ".",
        color="grey",
        alpha=0.5,
        label="dominated",
        rasterized=len(dominated) > _DENSE,
    )
    front = sorted(result["front"], key=lambda p: p["values"][a])
    ax.plot(
        [p["values"][a] for p in front],
        [p["values"][b] for p in front],
        "o-",
        color="crimson",
        label="Pareto front",
    )
    ax.set_xlabel(f"{a} ({result['objectives'][0]['goal']})")
    ax.set_ylabel(f"{b} ({result['objectives'][1]['goal']})")
    ax.legend(fontsize=7)
    ax.set_title(f"hypervolume {result['hypervolume']:.4g}", fontsize=9)
    return _svg(fig)


def cross_project(groups: pd.DataFrame, metrics: list[str], varied: list[str]) -> str | None:
    """Each compared metric per project against the first varied parameter, with CI bars."""
    if not metrics or not varied:
        return None
    x = varied[0]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
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
        ax.set_xlabel(x.removeprefix("param."))
        ax.set_ylabel(metric)
        ax.legend(fontsize=7)
    fig.suptitle("cross-project comparison")
    return _svg(fig)
