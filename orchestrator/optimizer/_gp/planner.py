"""Order candidate points: a batch-aware head, then everything else by acquisition.

1. Experiments in flight are fantasized (kriging believer: the posterior mean; constant liar: a
   fixed lie) and the posterior is conditioned on them, so their neighbourhood loses its appeal.
2. Large candidate sets are screened: the exact posterior mean for every candidate, and an
   upper bound on the variance from the nearest training point (one point's worth of
   information, in length-scale units). The shortlist gets the exact variance.
3. The head of the order is built greedily, one pick per step: a coverage pick (maximin over all
   candidates) or a model pick (best acquisition on the shortlist, or a refinement point from a
   local search, inside the promising regions or over the whole box, when that scores higher). Each pick is fantasized in turn; the shortlist's
   moments follow by a rank-one update, O(n s) per pick.
4. The rest follows: shortlist by its final acquisition, then the screened-out candidates, then
   candidates that repeat a point already run or in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from orchestrator.optimizer._gp.acquisition import Acquisition
from orchestrator.optimizer._gp.design import maximin_picks
from orchestrator.optimizer._gp.encoding import SpaceEncoder
from orchestrator.optimizer._gp.model import Posterior, kernel_matrix, matern_of_distance
from orchestrator.optimizer._gp.refine import (
    DUPLICATE_TOL,
    Region,
    box,
    explore_regions,
    half_widths,
    refinement_candidate,
)


@dataclass(frozen=True)
class PlanSettings:
    batch_size: int = 8
    strategy: str = "kriging_believer"  # or "constant_liar", "none"
    liar: str = "worst"  # constant liar's value: "best", "mean" or "worst" observed
    shortlist: int = 1500
    refinements: int = 0  # how many head picks may be refinement points
    region_width: float = 2.0  # half-width of refinement boxes, in length scales
    explore_starts: int = 0  # best-scored candidates whose neighbourhood is also refined
    global_starts: int = 4  # local searches of the acquisition over the whole box
    seed: int = 0


@dataclass(frozen=True)
class Pick:
    kind: str  # "model", "coverage" or "refinement"
    candidate: int  # position in the candidate array, -1 for a refinement point
    point: np.ndarray
    value: float  # acquisition when picked (NaN for coverage picks)


@dataclass
class Plan:
    order: np.ndarray  # permutation of candidate positions, best first
    picks: list[Pick] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)  # where refinement searched


def _fantasy_values(post: Posterior, U: np.ndarray, lie: float | None) -> np.ndarray:
    if lie is not None:
        return np.full(len(U), lie)
    mean, _ = post.predict(U, var=False)
    return mean


def _duplicates(candidates: np.ndarray, existing: np.ndarray) -> np.ndarray:
    if len(existing) == 0 or len(candidates) == 0:
        return np.zeros(len(candidates), dtype=bool)
    dist, _ = cKDTree(existing).query(candidates, k=1)
    return np.asarray(dist) <= DUPLICATE_TOL


def _screen(
    post: Posterior, acq: Acquisition, candidates: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Shortlist positions and a cheap score for every candidate."""
    mean = post.screen_mean(candidates)
    ls = post.params.length_scales
    dist, _ = cKDTree(post.X / ls).query(candidates / ls, k=1)
    k = matern_of_distance(np.asarray(dist, dtype=float), post.params.scale)
    var_bound = np.maximum(post.prior_var - k * k / (post.prior_var + post.params.noise), 1e-12)
    score = acq.from_moments(mean, var_bound, np.zeros(len(candidates)))
    by_score = np.argsort(-score, kind="stable")[:size]
    by_mean = np.argsort(mean, kind="stable")[: size // 4]
    return np.union1d(by_score, by_mean), score


def plan_order(
    post: Posterior,
    acq: Acquisition,
    candidates: np.ndarray,
    in_flight: np.ndarray,
    run: np.ndarray,
    kinds: Sequence[str],
    settings: PlanSettings,
    encoder: SpaceEncoder,
    regions: list[Region],
    valid: Callable[[np.ndarray], np.ndarray],
) -> Plan:
    """Order ``candidates``; ``kinds`` says for each head position "model" or "coverage"."""
    m = len(candidates)
    fantasize = settings.strategy != "none"
    lie = None
    if settings.strategy == "constant_liar":
        lie = float({"best": np.min(post.y), "mean": np.mean(post.y), "worst": np.max(post.y)}[settings.liar])
    if fantasize and len(in_flight):
        y_f = _fantasy_values(post, in_flight, lie)
        post = post.condition(in_flight, y_f, np.full(len(in_flight), post.params.noise))
        if acq.best is not None:
            acq.best = min(acq.best, float(np.min(y_f)))
    existing = np.vstack([run, in_flight]) if len(in_flight) else run
    dupes = _duplicates(candidates, existing)
    if m > settings.shortlist:
        short, screen_score = _screen(post, acq, candidates, settings.shortlist)
    else:
        short, screen_score = np.arange(m), np.zeros(m)
    S = candidates[short]
    mean_s, var_s, V = post.whitened(S)
    pof_s = acq.feasibility.log_pof(S)
    available = ~dupes
    picked_points: list[np.ndarray] = []
    picks: list[Pick] = []
    refinements_left = settings.refinements
    if refinements_left > 0:
        values = acq.from_moments(mean_s, var_s, pof_s)
        half = half_widths(post, encoder, settings.region_width)
        open_s = available[short]
        regions = regions + explore_regions(S[open_s], values[open_s], half, settings.explore_starts, regions)
    for step, kind in enumerate(kinds):
        values = acq.from_moments(mean_s, var_s, pof_s)
        pick: Pick | None = None
        if kind == "coverage":
            covered = np.vstack([existing, *picked_points]) if picked_points else existing
            pos = maximin_picks(candidates, covered, 1, exclude=np.flatnonzero(~available))
            if len(pos):
                pick = Pick("coverage", int(pos[0]), candidates[pos[0]], float("nan"))
        if pick is None:
            open_s = available[short]
            best_s = int(np.argmax(np.where(open_s, values, -np.inf))) if open_s.any() else -1
            if best_s >= 0 and np.isfinite(values[best_s]):
                pick = Pick("model", int(short[best_s]), S[best_s], float(values[best_s]))
            if refinements_left > 0:
                taken = np.vstack([existing, *picked_points]) if picked_points else existing
                found = refinement_candidate(
                    acq,
                    post,
                    regions,
                    S[open_s],
                    values[open_s],
                    encoder,
                    valid,
                    taken,
                    seed=settings.seed + step,
                    # later steps only refine around fantasies: local boxes do
                    global_starts=settings.global_starts if step == 0 else 0,
                )
                if found is not None and (pick is None or found[1] > pick.value + 1e-9):
                    pick = Pick("refinement", -1, found[0], found[1])
                    refinements_left -= 1
                    if not any(r.contains(found[0][None])[0] for r in regions):
                        # found by a whole-box search: report the box around it as a region
                        regions = [*regions, box(found[0], half, rank=len(regions), kind="explore")]
        if pick is None:
            break
        picks.append(pick)
        picked_points.append(pick.point[None])
        if pick.candidate >= 0:
            available[pick.candidate] = False
        # the same parameters may sit at several positions (repeats, projects): one pick covers all
        same = np.linalg.norm(candidates - pick.point, axis=1) <= DUPLICATE_TOL if m else np.zeros(0, bool)
        available &= ~same
        if not fantasize or step == len(kinds) - 1:
            continue
        x = pick.point[None]
        y_b = _fantasy_values(post, x, lie)
        mean_b_arr, var_b_arr, v_b_col = post.whitened(x)
        v_b, mean_b, var_b = v_b_col[:, 0], float(mean_b_arr[0]), float(var_b_arr[0])
        d_b = np.sqrt(var_b + post.params.noise)
        row = (kernel_matrix(x, S, post.params)[0] - v_b @ V) / d_b
        mean_s = mean_s + row * (y_b[0] - mean_b) / d_b
        var_s = np.maximum(var_s - row * row, 1e-12)
        V = np.vstack([V, row[None]])
        post = post.condition(x, y_b, np.array([post.params.noise]))
        if acq.best is not None:
            acq.best = min(acq.best, float(y_b[0]))
    final = acq.from_moments(mean_s, var_s, pof_s)
    # twins of a pick (same parameters, another index) rank with the duplicates of in-flight points
    picked = np.zeros(m, dtype=bool)
    picked[[p.candidate for p in picks if p.candidate >= 0]] = True
    repeats = dupes | (~available & ~picked)
    return Plan(_order(m, picks, short, final, screen_score, repeats), picks, regions)


def _order(
    m: int,
    picks: list[Pick],
    short: np.ndarray,
    final: np.ndarray,
    screen_score: np.ndarray,
    dupes: np.ndarray,
) -> np.ndarray:
    head = [p.candidate for p in picks if p.candidate >= 0]
    rank = np.full(m, 3.0)  # tiers: 0 head, 1 shortlist, 2 screened out, 3 duplicates
    key = np.zeros(m)
    rank[~dupes] = 2.0
    key[~dupes] = -screen_score[~dupes]
    in_short = short[~dupes[short]]
    rank[in_short] = 1.0
    key[short] = np.where(dupes[short], key[short], -final)
    rank[head] = 0.0
    key[head] = np.arange(len(head))
    return np.lexsort((key, rank)).astype(np.int64)
