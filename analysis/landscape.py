"""Where in the space is the metric good? The 2-D views and parallel coordinates.

The 2-D view follows the design. Parameters on a filled grid get a heatmap of the point means
(averaged over the other parameters). Sampled or continuous parameters, where a heatmap would be
a sparse white field, get a contour of a Gaussian process's mean: fitted to the point means, it
is drawn over the two most important parameters, with the others held at the best point. The
points that were run are drawn on it.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from analysis.figures import (
    BEST,
    DENSE,
    LAYOUT,
    is_levels,
    level_ticks,
    name,
    panels,
    plt,
    svg,
    thin,
    tick_label,
)
from analysis.surrogate import GaussianProcess

MAX_PAIRS = 3
_MESH = 60
_FIT_POINTS = 128  # the GP is fitted on at most this many point means (a cubic cost)
_FILLED = 0.5  # a pair of grid parameters whose cells are at least this full gets a heatmap


def _project_rows(groups: pd.DataFrame, metric: str, best: dict[str, Any] | None) -> pd.DataFrame:
    data = groups[(groups["metric"] == metric) & groups["mean"].notna()]
    project = best["project"] if best else (data["project"].iloc[0] if len(data) else None)
    return data[data["project"] == project]


def _filled_grid(data: pd.DataFrame, x: str, y: str) -> bool:
    if not (is_levels(data[x]) and is_levels(data[y])):
        return False
    cells = data[x].nunique() * data[y].nunique()
    return len(data.groupby([x, y])) >= _FILLED * cells


def _ticks(values: pd.Index) -> list[str]:
    return [tick_label(v) for v in values]


def _heatmap(ax: Any, fig: Any, data: pd.DataFrame, x: str, y: str, best: dict[str, Any] | None) -> None:
    table = data.groupby([y, x])["mean"].mean().unstack()
    image = ax.imshow(table.to_numpy(float), origin="lower", aspect="auto", cmap="viridis")
    level_ticks(ax, list(range(len(table.columns))), _ticks(table.columns))
    level_ticks(ax, list(range(len(table.index))), _ticks(table.index), axis="y")
    if best is not None and name(x) in best["parameters"] and name(y) in best["parameters"]:
        bx, by = best["parameters"][name(x)], best["parameters"][name(y)]
        if bx in table.columns and by in table.index:
            ax.plot([table.columns.get_loc(bx)], [table.index.get_loc(by)], **BEST)
    fig.colorbar(image, ax=ax, shrink=0.85)


def _scaled(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return (values - low) / np.where(high > low, high - low, 1.0)


def _contour(
    ax: Any,
    fig: Any,
    gp: GaussianProcess,
    data: pd.DataFrame,
    inputs: list[str],
    x: str,
    y: str,
    anchor: dict[str, float],
) -> None:
    low, high = data[inputs].min().to_numpy(float), data[inputs].max().to_numpy(float)
    xs = np.linspace(low[inputs.index(x)], high[inputs.index(x)], _MESH)
    ys = np.linspace(low[inputs.index(y)], high[inputs.index(y)], _MESH)
    mesh_x, mesh_y = np.meshgrid(xs, ys)
    grid = np.tile([anchor[c] for c in inputs], (_MESH * _MESH, 1)).astype(float)
    grid[:, inputs.index(x)] = mesh_x.ravel()
    grid[:, inputs.index(y)] = mesh_y.ravel()
    mean = gp.predict(_scaled(grid, low, high)).reshape(_MESH, _MESH)
    filled = ax.contourf(mesh_x, mesh_y, mean, levels=14, cmap="viridis")
    ax.contour(mesh_x, mesh_y, mean, levels=7, colors="white", linewidths=0.4, alpha=0.5)
    shown = thin(len(data), 1_000)
    ax.scatter(
        data[x].iloc[shown],
        data[y].iloc[shown],
        s=9,
        c="white",
        edgecolors="black",
        linewidths=0.5,
        label="runs",
        rasterized=len(data) > DENSE,
    )
    ax.plot([anchor[x]], [anchor[y]], **BEST)
    fig.colorbar(filled, ax=ax, shrink=0.85, label="GP mean")


def _important(varied: list[str], importance: list[str]) -> list[str]:
    ranked = [f"param.{p}" for p in importance if f"param.{p}" in varied]
    return ranked + [p for p in varied if p not in ranked]


def view(
    groups: pd.DataFrame,
    metric: str,
    varied: list[str],
    best: dict[str, Any] | None = None,
    importance: list[str] | None = None,
) -> tuple[str, str] | None:
    """The 2-D view of ``metric`` over the most important pairs of parameters.

    Args:
        groups: the analysis' groups as a frame (``SweepAnalysis.groups_frame``).
        metric: the objective drawn.
        varied: the varied parameter columns (``param.*``).
        best: the best configuration of ``metric`` (``best.objectives`` entry), marked with a star.
        importance: parameter names, most important first (the sensitivity ranking).

    Returns:
        ``(kind, svg)`` with kind ``heatmap``, ``contour`` or ``heatmap and contour``; ``None``
        with fewer than two varied parameters.
    """
    data = _project_rows(groups, metric, best)
    params = [p for p in _important(varied, importance or []) if p in data and data[p].nunique() > 1]
    pairs = list(itertools.combinations(params[:MAX_PAIRS], 2))[:MAX_PAIRS]
    if data.empty or not pairs:
        return None
    numeric = [p for p in params if pd.api.types.is_numeric_dtype(data[p])]
    kinds = ["heatmap" if _filled_grid(data, x, y) else "contour" for x, y in pairs]
    keep = [k == "heatmap" or (x in numeric and y in numeric) for k, (x, y) in zip(kinds, pairs, strict=True)]
    pairs = [p for p, k in zip(pairs, keep, strict=True) if k]
    kinds = [k for k, ok in zip(kinds, keep, strict=True) if ok]
    if not pairs:
        return None
    gp, anchor = None, {}
    if "contour" in kinds:
        fit = data.iloc[thin(len(data), _FIT_POINTS)]
        low, high = data[numeric].min().to_numpy(float), data[numeric].max().to_numpy(float)
        gp = GaussianProcess.fit(
            _scaled(fit[numeric].to_numpy(float), low, high), fit["mean"].to_numpy(float)
        )
        top = best["parameters"] if best else {}
        anchor = {c: float(top.get(name(c), data[c].median())) for c in numeric}
    fig, axes = panels(len(pairs), size=(4.2, 3.3) if len(pairs) > 1 else (5.6, 4.3))
    for ax, (x, y), kind in zip(axes, pairs, kinds, strict=True):
        if kind == "heatmap":
            _heatmap(ax, fig, data, x, y, best)
        else:
            assert gp is not None
            _contour(ax, fig, gp, data, numeric, x, y, anchor)
        ax.set_xlabel(name(x))
        ax.set_ylabel(name(y))
    return " and ".join(sorted(set(kinds))), svg(fig)


def parallel_coordinates(
    groups: pd.DataFrame, metric: str, goal: str, varied: list[str], best: dict[str, Any] | None = None
) -> str | None:
    """How do the parameters combine in the good points? One line per point, coloured by the
    metric; three or more varied parameters only (fewer read better as the 2-D view)."""
    data = _project_rows(groups, metric, best)
    params = [p for p in varied if p in data and data[p].nunique() > 1]
    if len(params) < 3 or data.empty:
        return None
    # the best points drawn last, on top of the others
    data = data.sort_values("mean", ascending=goal != "maximize").iloc[thin(len(data), 600)]
    data = data.sort_values("mean", ascending=goal == "maximize")
    columns, labels = [], []
    for p in params:
        values = data[p]
        if pd.api.types.is_numeric_dtype(values):
            low, high = float(values.min()), float(values.max())
            columns.append(((values - low) / (high - low if high > low else 1.0)).to_numpy(float))
            labels.append((f"{low:.3g}", f"{high:.3g}"))
        else:
            codes, uniques = pd.factorize(values.astype(str), sort=True)
            columns.append(codes / max(len(uniques) - 1, 1))
            labels.append((tick_label(uniques[0]), tick_label(uniques[-1])))
    low, high = float(data["mean"].min()), float(data["mean"].max())
    columns.append(((data["mean"] - low) / (high - low if high > low else 1.0)).to_numpy(float))
    labels.append((f"{low:.4g}", f"{high:.4g}"))
    lines = np.column_stack(columns)
    axis_x = np.arange(lines.shape[1])
    fig, ax = plt.subplots(figsize=(min(2.0 * len(axis_x) + 1.5, 11.0), 3.6), layout=LAYOUT)
    colors = plt.get_cmap("viridis")(lines[:, -1])
    for row, color in zip(lines, colors, strict=True):
        ax.plot(axis_x, row, "-", color=color, lw=0.9, alpha=0.7)
    for i, (bottom, top) in enumerate(labels):
        ax.axvline(i, color="0.3", lw=0.8)
        for value, at in ((top, 1.0), (bottom, 0.0)):
            ax.annotate(
                str(value), (i, at), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8
            )
    ax.set_xticks(axis_x, [name(p) for p in params] + [f"{metric} ({goal})"])
    ax.xaxis.set_ticks_position("top")
    ax.tick_params(axis="x", pad=6, length=0)
    ax.set_yticks([])
    ax.spines[["left", "bottom", "top", "right"]].set_visible(False)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(-0.1, len(axis_x) - 0.6)
    mappable = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(low, high))
    fig.colorbar(mappable, ax=ax, shrink=0.85, label=metric)
    return svg(fig)
