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


def _lie(post: Posterior, settings: PlanSettings) -> float | None:
    """The constant liar's value, or None for the kriging believer (the posterior mean)."""
    if settings.strategy != "constant_liar":
        return None
    return float({"best": np.min(post.y), "mean": np.mean(post.y), "worst": np.max(post.y)}[settings.liar])


class _Planner:
    """The greedy head of one plan: the posterior and the shortlist's moments as picks are made.

    It lives for one ``plan_order`` call; each pick is fantasized before the next.
    """

    def __init__(
        self,
        post: Posterior,
        acq: Acquisition,
        candidates: np.ndarray,
        in_flight: np.ndarray,
        run: np.ndarray,
        settings: PlanSettings,
        encoder: SpaceEncoder,
        regions: list[Region],
        valid: Callable[[np.ndarray], np.ndarray],
    ) -> None:
        self.acq, self.candidates, self.settings = acq, candidates, settings
        self.encoder, self.regions, self.valid = encoder, regions, valid
        self.fantasize = settings.strategy != "none"
        self.lie = _lie(post, settings)
        if self.fantasize and len(in_flight):
            post = self._believe(post, in_flight)
        self.post = post
        self.existing = np.vstack([run, in_flight]) if len(in_flight) else run
        self.dupes = _duplicates(candidates, self.existing)
        m = len(candidates)
        if m > settings.shortlist:
            self.short, self.screen_score = _screen(post, acq, candidates, settings.shortlist)
        else:
            self.short, self.screen_score = np.arange(m), np.zeros(m)
        self.S = candidates[self.short]
        self.mean_s, self.var_s, self.V = post.whitened(self.S)
        self.pof_s = acq.feasibility.log_pof(self.S)
        self.available = ~self.dupes
        self.picks: list[Pick] = []
        self.refinements_left = settings.refinements
        if self.refinements_left > 0:
            values = self.values()
            self.half = half_widths(post, encoder, settings.region_width)
            open_s = self.available[self.short]
            self.regions = regions + explore_regions(
                self.S[open_s], values[open_s], self.half, settings.explore_starts, regions
            )

    def _believe(self, post: Posterior, X: np.ndarray) -> Posterior:
        """Condition on fantasized results at ``X``; the incumbent follows the best of them."""
        y = _fantasy_values(post, X, self.lie)
        if self.acq.best is not None:
            self.acq.best = min(self.acq.best, float(np.min(y)))
        return post.condition(X, y, np.full(len(X), post.params.noise))

    def values(self) -> np.ndarray:
        """The acquisition of the shortlist under the current fantasies."""
        return self.acq.from_moments(self.mean_s, self.var_s, self.pof_s)

    def _taken(self) -> np.ndarray:
        points = [p.point[None] for p in self.picks]
        return np.vstack([self.existing, *points]) if points else self.existing

    def _coverage_pick(self) -> Pick | None:
        pos = maximin_picks(self.candidates, self._taken(), 1, exclude=np.flatnonzero(~self.available))
        return Pick("coverage", int(pos[0]), self.candidates[pos[0]], float("nan")) if len(pos) else None

    def _model_pick(self, step: int) -> Pick | None:
        """The best open shortlist point, or a refinement point when one scores higher."""
        values = self.values()
        open_s = self.available[self.short]
        pick: Pick | None = None
        best_s = int(np.argmax(np.where(open_s, values, -np.inf))) if open_s.any() else -1
        if best_s >= 0 and np.isfinite(values[best_s]):
            pick = Pick("model", int(self.short[best_s]), self.S[best_s], float(values[best_s]))
        if self.refinements_left <= 0:
            return pick
        found = refinement_candidate(
            self.acq,
            self.post,
            self.regions,
            self.S[open_s],
            values[open_s],
            self.encoder,
            self.valid,
            self._taken(),
            seed=self.settings.seed + step,
            # later steps only refine around fantasies: local boxes do
            global_starts=self.settings.global_starts if step == 0 else 0,
        )
        if found is None or (pick is not None and found[1] <= pick.value + 1e-9):
            return pick
        self.refinements_left -= 1
        if not any(r.contains(found[0][None])[0] for r in self.regions):
            # found by a whole-box search: report the box around it as a region
            self.regions = [*self.regions, box(found[0], self.half, rank=len(self.regions), kind="explore")]
        return Pick("refinement", -1, found[0], found[1])

    def take(self, pick: Pick) -> None:
        """Record ``pick``: it and its twins (same parameters, another index) leave the pool."""
        self.picks.append(pick)
        if pick.candidate >= 0:
            self.available[pick.candidate] = False
        if len(self.candidates):
            self.available &= np.linalg.norm(self.candidates - pick.point, axis=1) > DUPLICATE_TOL

    def believe_pick(self, pick: Pick) -> None:
        """Fantasize ``pick``; the shortlist's moments follow by a rank-one update."""
        post, x = self.post, pick.point[None]
        y_b = _fantasy_values(post, x, self.lie)
        mean_b_arr, var_b_arr, v_b_col = post.whitened(x)
        v_b, mean_b, var_b = v_b_col[:, 0], float(mean_b_arr[0]), float(var_b_arr[0])
        d_b = np.sqrt(var_b + post.params.noise)
        row = (kernel_matrix(x, self.S, post.params)[0] - v_b @ self.V) / d_b
        self.mean_s = self.mean_s + row * (y_b[0] - mean_b) / d_b
        self.var_s = np.maximum(self.var_s - row * row, 1e-12)
        self.V = np.vstack([self.V, row[None]])
        self.post = post.condition(x, y_b, np.array([post.params.noise]))
        if self.acq.best is not None:
            self.acq.best = min(self.acq.best, float(y_b[0]))

    def plan(self, kinds: Sequence[str]) -> Plan:
        for step, kind in enumerate(kinds):
            pick = self._coverage_pick() if kind == "coverage" else None
            pick = pick or self._model_pick(step)
            if pick is None:
                break
            self.take(pick)
            if self.fantasize and step < len(kinds) - 1:
                self.believe_pick(pick)
        m = len(self.candidates)
        # twins of a pick (same parameters, another index) rank with the duplicates of in-flight points
        picked = np.zeros(m, dtype=bool)
        picked[[p.candidate for p in self.picks if p.candidate >= 0]] = True
        repeats = self.dupes | (~self.available & ~picked)
        order = _order(m, self.picks, self.short, self.values(), self.screen_score, repeats)
        return Plan(order, self.picks, self.regions)


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
    return _Planner(post, acq, candidates, in_flight, run, settings, encoder, regions, valid).plan(kinds)


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
