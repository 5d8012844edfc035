"""Convergence: the best value so far against runs, cost and wall time.

For an adaptive sweep the question is also "did the optimizer beat random order?". The
space-filling runs (the startup design) are a sample of the space as random order would see it,
so the expected best after k random picks from them is exact order statistics, not a simulation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln

from analysis.compare import finite


def best_so_far(frame: pd.DataFrame, metric: str, goal: str = "maximize") -> pd.DataFrame:
    """The running best of ``metric`` over completed runs in the order they finished.

    Returns:
        One row per run: ``run`` (1-based), ``elapsed_seconds`` (since the first run started),
        ``cumulative_cost`` (USD, missing costs count as 0), ``value`` and ``best``.
    """
    column = f"metric.{metric}"
    cols = ["run", "elapsed_seconds", "cumulative_cost", "value", "best"]
    if column not in frame:
        return pd.DataFrame(columns=cols)
    ok = frame[(frame["status"] == "completed") & frame[column].notna()]
    if ok.empty:
        return pd.DataFrame(columns=cols)
    ok = ok.sort_values(["timestamp", "index"], kind="stable")
    stamps = pd.to_datetime(ok["timestamp"], utc=True)
    start = stamps.min() - pd.to_timedelta(float(ok["execution_time"].iloc[0] or 0), unit="s")
    values = ok[column].to_numpy(float)
    best = np.maximum.accumulate(values) if goal == "maximize" else np.minimum.accumulate(values)
    return pd.DataFrame(
        {
            "run": np.arange(1, len(ok) + 1),
            "elapsed_seconds": (stamps - start).dt.total_seconds().to_numpy(),
            "cumulative_cost": pd.to_numeric(ok["cost"], errors="coerce").fillna(0).cumsum().to_numpy(),
            "value": values,
            "best": best,
        }
    )


def expected_best_random(values: np.ndarray, runs: int, goal: str = "maximize") -> np.ndarray:
    """Expected best after k = 1..runs picks in random order (without replacement) from ``values``.

    With the values sorted best-last, the best of k picks is the i-th with probability
    C(i-1, k-1) / C(N, k). Beyond N picks the pool is exhausted and the best is its best.
    """
    v = np.sort(np.asarray(values, dtype=float))
    if goal != "maximize":
        v = v[::-1]
    n = len(v)
    if n == 0:
        return np.full(runs, np.nan)
    i = np.arange(1, n + 1)
    out = np.empty(runs)
    for k in range(1, runs + 1):
        if k >= n:
            out[k - 1] = v[-1]
            continue
        log_w = np.where(
            i >= k,
            gammaln(np.maximum(i, 1)) - gammaln(np.maximum(k, 1)) - gammaln(np.maximum(i - k + 1, 1)),
            -np.inf,
        )
        log_w -= gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
        out[k - 1] = float(np.sum(np.exp(log_w) * v))
    return out


def convergence(
    frame: pd.DataFrame,
    objectives: list[dict[str, Any]],
    *,
    adaptive: bool,
    startup_points: int | None,
    varied: int = 1,
) -> dict[str, Any]:
    """Best-so-far traces of each objective, with the random-order reference for adaptive sweeps.

    Returns:
        ``{metric: {"goal", "runs", "elapsed_seconds", "cumulative_cost", "best", "value",
        "random_order_best"}}`` with lists of equal length (``random_order_best`` empty for
        non-adaptive sweeps, whose order is not chosen by a model). The startup design is the
        pool, so beyond its size the reference stays at the pool's best: a conservative
        estimate of random order.
    """
    out: dict[str, Any] = {}
    for objective in objectives:
        metric, goal = objective["metric"], objective["goal"]
        trace = best_so_far(frame, metric, goal)
        if trace.empty:
            continue
        random_best: list[float] = []
        pool_size = 0
        if adaptive:
            pool_size = startup_points or max(6, varied)  # the optimizer's default startup design
            pool_size = min(pool_size, len(trace))
            pool = trace["value"].to_numpy()[:pool_size]
            random_best = finite(expected_best_random(pool, len(trace), goal))
        out[metric] = {
            "goal": goal,
            "runs": trace["run"].astype(int).tolist(),
            "elapsed_seconds": finite(trace["elapsed_seconds"].round(6)),
            "cumulative_cost": finite(trace["cumulative_cost"]),
            "value": finite(trace["value"]),
            "best": finite(trace["best"]),
            "random_order_best": random_best,
            "random_order_pool": pool_size,
        }
    return out
