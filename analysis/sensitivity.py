"""Sensitivity: which parameters matter, and how much, with intervals.

Variance-based (Sobol') indices: the first-order index S_i is the share of the variance of the
metric explained by parameter i alone, the total index S_Ti the share that involves i at all
(alone or in interactions). Two estimators:

* **grid** (full factorial designs): exact ANOVA decomposition of the per-point means, with the
  noise of the means (estimated from the repeats) subtracted so that a parameter that does not
  matter scores about zero, not a positive bias; intervals by bootstrapping the repeats within
  each point.
* **surrogate** (adaptive or sampled sweeps): a Gaussian process fitted to the results, whose
  mean is analysed with SALib's Saltelli/Sobol' estimator (intervals: SALib's bootstrap). The GP's
  length scales are reported too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def is_full_grid(frame: pd.DataFrame, keys: Sequence[str]) -> bool:
    """Every combination of the observed levels of ``keys`` has at least one row."""
    if not keys or frame.empty:
        return False
    levels = np.prod([frame[k].nunique(dropna=False) for k in keys], dtype=float)
    return levels > 1 and len(frame.groupby(list(keys), dropna=False)) == levels


def _grid_indices(values: np.ndarray, codes: np.ndarray, levels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """S_i and S_Ti for one full-grid dataset: ``values`` (rows), ``codes`` (rows x d level codes)."""
    d = len(levels)
    flat = np.ravel_multi_index(codes.T, levels)
    n_cells = int(np.prod(levels))
    count = np.bincount(flat, minlength=n_cells).astype(float)
    total = np.bincount(flat, weights=values, minlength=n_cells)
    means = (total / count).reshape(levels)
    # Noise variance of a cell mean, pooled over cells with repeats (0 with no repeats).
    sq = np.bincount(flat, weights=values**2, minlength=n_cells)
    within = sq - total**2 / count
    dof = (count - 1).sum()
    noise = (within.sum() / dof) * np.mean(1 / count) if dof > 0 else 0.0
    variance = means.var() - noise * (n_cells - 1) / n_cells
    first, total_index = np.empty(d), np.empty(d)
    for i in range(d):
        others = tuple(j for j in range(d) if j != i)
        marginal = means.mean(axis=others) if others else means
        first[i] = marginal.var() - noise * (levels[i] - 1) / n_cells
        total_index[i] = means.var(axis=i).mean() - noise * (levels[i] - 1) / levels[i]
    if variance <= 0:
        return np.full(d, np.nan), np.full(d, np.nan)
    return first / variance, total_index / variance


def grid_sensitivity(
    frame: pd.DataFrame,
    keys: Sequence[str],
    metric: str,
    *,
    confidence: float = 0.95,
    n_boot: int = 200,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """First-order and total indices of ``metric`` on a full grid, with bootstrap intervals.

    Args:
        frame: completed rows of one project (all points of a full factorial of ``keys``).
        keys: the varied parameter columns.
        metric: metric name without the prefix.
        confidence: interval level.
        n_boot: bootstrap resamples of the repeats (no intervals without repeats).
        seed: bootstrap seed.

    Returns:
        One entry per parameter, most important first (by total index): ``parameter``,
        ``first_order``, ``first_order_ci``, ``total``, ``total_ci``, ``method`` ("grid").
    """
    column = f"metric.{metric}"
    data = frame.dropna(subset=[column])
    keys = list(keys)
    if not is_full_grid(data, keys):
        return []
    codes = np.column_stack([pd.factorize(data[k], sort=True)[0] for k in keys])
    levels = [int(codes[:, j].max()) + 1 for j in range(len(keys))]
    values = data[column].to_numpy(float)
    first, total = _grid_indices(values, codes, levels)
    if np.isnan(first).all():
        return []
    cells = np.ravel_multi_index(codes.T, levels)
    has_repeats = np.bincount(cells).max() > 1
    boot_first, boot_total = [], []
    if has_repeats and n_boot:
        # Residual bootstrap within each cell; residuals inflated by sqrt(n/(n-1)) so the
        # resampled spread is not smaller than the observed one.
        n_cells = int(np.prod(levels))
        counts = np.bincount(cells, minlength=n_cells)
        cell_mean = np.bincount(cells, weights=values, minlength=n_cells) / np.maximum(counts, 1)
        resid = (values - cell_mean[cells]) * np.sqrt(counts / np.maximum(counts - 1, 1))[cells]
        order = np.argsort(cells, kind="stable")
        starts = np.searchsorted(cells[order], np.arange(n_cells))
        rng = np.random.default_rng(seed)
        for _ in range(n_boot):
            pick = order[starts[cells] + (rng.random(len(cells)) * counts[cells]).astype(int)]
            f, t = _grid_indices(cell_mean[cells] + resid[pick], codes, levels)
            boot_first.append(f)
            boot_total.append(t)
    tail = (1 - confidence) / 2 * 100
    out = []
    for j, key in enumerate(keys):
        entry = {
            "parameter": key.removeprefix("param."),
            "first_order": float(first[j]),
            "total": float(total[j]),
            "first_order_ci": [None, None],
            "total_ci": [None, None],
            "method": "grid",
        }
        if boot_first:
            # The resamples carry the noise of the original means on top of their own, so their
            # centre is shifted; the bootstrap gives the spread, centred on the estimate.
            bf, bt = np.array(boot_first)[:, j], np.array(boot_total)[:, j]
            bf, bt = bf - np.nanmedian(bf) + first[j], bt - np.nanmedian(bt) + total[j]
            entry["first_order_ci"] = [
                float(np.nanpercentile(bf, tail)),
                float(np.nanpercentile(bf, 100 - tail)),
            ]
            entry["total_ci"] = [float(np.nanpercentile(bt, tail)), float(np.nanpercentile(bt, 100 - tail))]
        out.append(entry)
    return sorted(out, key=lambda e: -e["total"])


def surrogate_sensitivity(
    frame: pd.DataFrame,
    keys: Sequence[str],
    metric: str,
    *,
    log_scaled: Sequence[str] = (),
    confidence: float = 0.95,
    n_base: int = 512,
    max_points: int = 128,
    seed: int = 0,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Sobol' indices of a GP surrogate's mean (SALib), and the GP's length scales.

    Args:
        frame: completed rows of one project.
        keys: varied numeric parameter columns.
        metric: metric name without the prefix.
        log_scaled: columns modelled in log space.
        confidence: level of SALib's bootstrap intervals.
        n_base: Saltelli base sample size (a power of two).
        max_points: fit on at most this many point means (a random subset beyond).
        seed: sampling seed.

    Returns:
        ``(indices, length_scales)``: indices as :func:`grid_sensitivity` with ``method``
        "surrogate" (the intervals cover the Monte Carlo error of the estimator on the
        surrogate, not the surrogate's own uncertainty); length scales per parameter on the
        [0, 1]-scaled inputs.
    """
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    from analysis.surrogate import GaussianProcess

    column = f"metric.{metric}"
    keys = list(keys)
    data = frame.dropna(subset=[column])
    means = data.groupby(keys, dropna=False)[column].mean().reset_index()
    if len(means) < len(keys) + 3:
        return [], {}
    x = means[keys].to_numpy(float)
    for j, key in enumerate(keys):
        if key in log_scaled and (x[:, j] > 0).all():
            x[:, j] = np.log(x[:, j])
    low, high = x.min(axis=0), x.max(axis=0)
    x = (x - low) / np.where(high > low, high - low, 1.0)
    y = means[column].to_numpy(float)
    if len(x) > max_points:
        pick = np.random.default_rng(seed).choice(len(x), max_points, replace=False)
        x, y = x[pick], y[pick]
    gp = GaussianProcess.fit(x, y, seed=seed)
    names = [k.removeprefix("param.") for k in keys]
    problem = {"num_vars": len(keys), "names": names, "bounds": [[0.0, 1.0]] * len(keys)}
    sample = sobol_sample.sample(problem, n_base, calc_second_order=False, seed=seed)
    result = sobol_analyze.analyze(
        problem,
        gp.predict(sample),
        calc_second_order=False,
        conf_level=confidence,
        seed=seed,
    )
    out = []
    for j, name in enumerate(names):
        s1, c1, st, ct = (float(result[k][j]) for k in ("S1", "S1_conf", "ST", "ST_conf"))
        out.append(
            {
                "parameter": name,
                "first_order": s1,
                "first_order_ci": [s1 - c1, s1 + c1],
                "total": st,
                "total_ci": [st - ct, st + ct],
                "method": "surrogate",
            }
        )
    lengths = {name: float(v) for name, v in zip(names, gp.lengths, strict=True)}
    return sorted(out, key=lambda e: -e["total"]), lengths


def sensitivity_analysis(
    data: Any, metrics: Sequence[str], *, confidence: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Sensitivity of each metric in each project: the grid estimator on full grids, the
    surrogate one otherwise (numeric parameters only).

    Returns:
        ``{"indices": [...], "length_scales": [...]}``: each index entry as
        :func:`grid_sensitivity` plus ``project`` and ``metric``; each length-scale entry
        ``{"project", "metric", "parameter", "length_scale"}``.
    """
    indices: list[dict[str, Any]] = []
    scales: list[dict[str, Any]] = []
    ok = data.completed
    if ok.empty:
        return {"indices": indices, "length_scales": scales}
    log_scaled = [
        f"param.{k}"
        for k, v in data.config.get("parameters", {}).items()
        if isinstance(v, dict) and v.get("kind") == "log"
    ]
    for project, rows in ok.groupby("project_name", sort=True):
        varied = [k for k in data.varied if rows[k].nunique() > 1]
        numeric = [k for k in varied if pd.api.types.is_numeric_dtype(rows[k])]
        if len(varied) < 2:  # one varied parameter explains all the variance: nothing to rank
            continue
        for metric in metrics:
            if f"metric.{metric}" not in rows or rows[f"metric.{metric}"].notna().sum() < 3:
                continue
            found = grid_sensitivity(rows, varied, metric, confidence=confidence, seed=seed)
            if not found and numeric:
                try:
                    found, lengths = surrogate_sensitivity(
                        rows, numeric, metric, log_scaled=log_scaled, confidence=confidence, seed=seed
                    )
                except (ValueError, np.linalg.LinAlgError) as exc:  # a degenerate fit: report nothing
                    log.warning("surrogate sensitivity of %s/%s failed: %s", project, metric, exc)
                    found, lengths = [], {}
                scales += [
                    {"project": project, "metric": metric, "parameter": p, "length_scale": v}
                    for p, v in lengths.items()
                ]
            indices += [{"project": project, "metric": metric, **entry} for entry in found]
    return {"indices": indices, "length_scales": scales}
