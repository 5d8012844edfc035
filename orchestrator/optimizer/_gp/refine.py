"""Promising regions and refinement points inside them.

A promising region is a box around one of the best observed points (by posterior mean, feasible
first), a few length scales wide in each continuous column, with categorical columns held at the
centre's values. Refinement points are local maximizers of the acquisition inside a region (or,
from a few more starts, over the whole box), found by L-BFGS-B with analytic gradients, one
search per start, in length-scale units. Integers are rounded afterwards and the point
re-scored; points that break a parameter constraint or repeat an existing point are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.stats import qmc
from threadpoolctl import threadpool_limits

from orchestrator.optimizer._gp.acquisition import Acquisition
from orchestrator.optimizer._gp.encoding import SpaceEncoder
from orchestrator.optimizer._gp.model import Posterior

DUPLICATE_TOL = 1e-6  # encoded distance under which two points count as the same experiment


@dataclass(frozen=True)
class Region:
    """An encoded box around a good observed point."""

    center: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    mean: float  # standardized posterior mean at the centre (NaN for explore boxes)
    rank: int
    kind: str = "best"  # "best": around a good result; "explore": around a top-scored candidate

    def contains(self, U: np.ndarray) -> np.ndarray:
        return np.all((U >= self.lower - 1e-12) & (U <= self.upper + 1e-12), axis=1)


def half_widths(post: Posterior, encoder: SpaceEncoder, width: float) -> np.ndarray:
    """Half-width of a region per encoded column: ``width`` length scales, 0 for categoricals."""
    half = np.clip(width * post.params.length_scales, 0.02, 0.5)
    return np.where(encoder.continuous, half, 0.0)


def box(
    center: np.ndarray, half: np.ndarray, mean: float = float("nan"), rank: int = -1, kind: str = "best"
) -> Region:
    return Region(
        center.copy(), np.clip(center - half, 0.0, 1.0), np.clip(center + half, 0.0, 1.0), mean, rank, kind
    )


def explore_regions(
    candidates: np.ndarray, values: np.ndarray, half: np.ndarray, count: int, skip: list[Region]
) -> list[Region]:
    """Boxes around the ``count`` best-scored candidates outside the ``skip`` regions.

    The acquisition's peak may lie far from every good result so far, where a sweep point only
    approximates it; a local search there is what a global acquisition optimizer would do.
    """
    out: list[Region] = []
    for i in np.argsort(-values, kind="stable"):
        if len(out) >= count or not np.isfinite(values[i]):
            break
        x = candidates[i][None]
        if any(r.contains(x)[0] for r in [*skip, *out]):
            continue
        out.append(box(candidates[i], half, rank=len(skip) + len(out), kind="explore"))
    return out


def promising_regions(
    post: Posterior,
    X: np.ndarray,
    mean: np.ndarray,
    feasible: np.ndarray,
    encoder: SpaceEncoder,
    *,
    count: int,
    width: float,
) -> list[Region]:
    """Up to ``count`` boxes around distinct good points of ``X`` (lower ``mean`` is better)."""
    if len(X) == 0 or count <= 0:
        return []
    half = half_widths(post, encoder, width)
    regions: list[Region] = []
    for i in np.lexsort((mean, ~feasible)):
        if any(r.contains(X[i][None])[0] for r in regions):
            continue
        regions.append(box(X[i], half, float(mean[i]), len(regions)))
        if len(regions) >= count:
            break
    return regions


def _local_maximize(
    acq: Acquisition,
    post: Posterior,
    starts: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    cont: np.ndarray,
    max_iter: int,
) -> np.ndarray:
    """Maximize the acquisition from each start over the continuous columns, one search each.

    One joint problem over all starts would be cheaper in Python calls, but log EI far from the
    data has gradients orders of magnitude larger than near its peak: the joint line search then
    serves the hopeless starts and the good ones barely move. Each search runs in length-scale
    units (``z = x / length scale``), where the acquisition is about as curved in every
    direction: L-BFGS-B then converges in a few dozen steps even when length scales differ 100x.
    """
    out = starts.copy()
    ls = post.params.length_scales[cont]
    with threadpool_limits(1):  # many small products: threads only add synchronization
        for i, start in enumerate(starts):

            def negative(z: np.ndarray, base: np.ndarray = start) -> tuple[float, np.ndarray]:
                U = base.copy()[None]
                U[0, cont] = z * ls
                value, grad = acq.value_and_grad(post, U)
                if not np.isfinite(value[0]):
                    return 1e300, np.zeros(len(z))
                return float(-value[0]), -grad[0, cont] * ls

            bounds = np.stack([lower[i, cont] / ls, upper[i, cont] / ls], axis=1)
            res = minimize(
                negative,
                start[cont] / ls,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": max_iter, "gtol": 1e-4},
            )
            out[i, cont] = np.clip(res.x * ls, lower[i, cont], upper[i, cont])
    return out


def refinement_candidate(
    acq: Acquisition,
    post: Posterior,
    regions: list[Region],
    shortlist: np.ndarray,
    shortlist_acq: np.ndarray,
    encoder: SpaceEncoder,
    valid: Callable[[np.ndarray], np.ndarray],
    taken: np.ndarray,
    *,
    seed: int,
    starts_per_box: int = 2,
    max_starts: int = 6,
    global_starts: int = 0,
    max_iter: int = 60,
) -> tuple[np.ndarray, float] | None:
    """The best new point found by local search inside ``regions``, with its acquisition value.

    With ``global_starts``, that many more searches run over the whole box, from the best-scored
    of the shortlist and of quasi-random probes: only searching near the best results would give
    exploitation continuous optimization and exploration only the sweep's discrete points.
    """
    cont = encoder.continuous
    if not cont.any() or not (regions or global_starts):
        return None
    probe = qmc.Sobol(int(cont.sum()), scramble=True, seed=seed).random(32)
    starts: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []
    for region in regions:
        local = np.repeat(region.center[None], len(probe) + 1, axis=0)
        local[1:, cont] = region.lower[cont] + probe * (region.upper[cont] - region.lower[cont])
        inside = region.contains(shortlist) if len(shortlist) else np.zeros(0, dtype=bool)
        best_inside = shortlist[inside][np.argsort(-shortlist_acq[inside])[:starts_per_box]]
        pool = np.vstack([local, best_inside])
        values = acq.value(post, pool)
        for i in np.argsort(-values)[:starts_per_box]:
            starts.append((values[i], pool[i], region.lower, region.upper))
    # local searches are the expensive part: only from the best-scored starts of all boxes
    starts.sort(key=lambda s: -s[0])
    starts = starts[:max_starts]
    if global_starts and len(shortlist):
        order = np.argsort(-shortlist_acq)
        pool = np.repeat(shortlist[order[0]][None], 256, axis=0)
        pool[:, cont] = qmc.Sobol(int(cont.sum()), scramble=True, seed=seed + 1).random(256)
        pool = np.vstack([shortlist[order[: 4 * global_starts]], pool])
        values = acq.value(post, pool)
        zeros, ones = np.zeros(encoder.width), np.ones(encoder.width)
        starts += [(values[i], pool[i], zeros, ones) for i in np.argsort(-values)[:global_starts]]
    chosen = starts
    found = _local_maximize(
        acq,
        post,
        np.asarray([s[1] for s in chosen]),
        np.asarray([s[2] for s in chosen]),
        np.asarray([s[3] for s in chosen]),
        cont,
        max_iter,
    )
    found = encoder.snap(found)
    ok = valid(found) & np.all(np.isfinite(found), axis=1)
    if len(taken):
        dist = np.min(np.linalg.norm(found[:, None, :] - taken[None, :, :], axis=2), axis=1)
        ok &= dist > DUPLICATE_TOL
    if not ok.any():
        return None
    found = found[ok]
    values = acq.value(post, found)
    best = int(np.argmax(values))
    return found[best], float(values[best])
