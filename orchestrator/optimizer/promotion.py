"""Which points of a fidelity ladder climb a rung: the promotion policy, run in every refit.

Every point runs on the first rung; a point done on rung ``r`` may be promoted to ``r + 1`` (an
optimizer-added point with ``fidelity: r + 1``, see :mod:`orchestrator.optimizer.ladder`). Two rules
(``promote.by``):

* ``model`` (default): the rungs are modelled jointly by one Gaussian process whose inputs are
  the parameters and the rung (scaled to [0, 1], same Matérn 5/2 kernel with its own length
  scale): the length scale over the rung is how far the cheap rungs are trusted about the top
  one, fitted from the points that ran on both. Autoregressive co-kriging (Kennedy-O'Hagan AR1,
  ``top = rho low + delta``) was measured against it on biased, noisier cheap rungs
  (``benchmarks/ladder_model.py``, 20 seeds, the best 20 % promoted). Predicting the top rung
  at the points run only on the cheap one, this GP's error was 0.60-0.89x co-kriging's where the
  QPU is the simulator depolarized and 0.68-0.85x where a bias varies over the space, its
  variances better calibrated (what EI relies on); co-kriging won only where the cheap rung is
  flatter than the top (1.3-1.8x). A promoted set is clustered where the cheap rung looks good,
  which hardly pins down AR1's ``rho``. See :func:`decide` for the rule.
* ``top_k``: the ``top_k`` best points done on each rung (by the objective measured there) climb.

Both rules obey two limits: at most ``floor(max_share x points done on rung 0)`` points ever climb
past rung 0 (so a finished sweep has promoted at most ``max_share`` of its points; higher rungs
only take points that climbed to the one below), and a promotion the sweep's remaining budget
cannot cover is not made. A point climbs only from a rung where it is done (completed, none of
its repeats pending or running) and never to a rung it was promoted to before.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from core.identity import canonical
from core.project import FIDELITY, ProjectSpec, PromoteSpec, is_managed
from orchestrator.optimizer._gp.acquisition import log_ei
from orchestrator.optimizer._gp.design import training_subset
from orchestrator.optimizer._gp.encoding import SpaceEncoder
from orchestrator.optimizer._gp.model import fit_posterior
from orchestrator.optimizer._gp.observations import Scalarizer, SlackFunction, build_observations
from orchestrator.optimizer._inputs import to_rows

if TYPE_CHECKING:
    from core.config import SweepConfiguration
    from orchestrator.braket.prices import PriceTable

#: an expected improvement below this share of the objective's spread is worth nothing
NEGLIGIBLE = 1e-3
#: before a rung has results, the sd (in the objective's spread) of its gap to the rung below
GAP = 0.5
MAX_TRAINING, FIT_ROWS = 1000, 150
#: a free rung's cost in the EI-per-dollar ratio (free promotions then rank by EI alone)
MIN_USD = 1e-6


def point_key(parameters: Mapping[str, Any]) -> str:
    """A point's identity across its rungs: its parameters without ``fidelity``, canonical JSON."""
    plain = {k: v for k, v in parameters.items() if k != FIDELITY}
    return json.dumps(canonical(plain), sort_keys=True, separators=(",", ":"))


def rung_of(parameters: Mapping[str, Any]) -> int:
    return int(parameters.get(FIDELITY) or 0)


@dataclass(frozen=True)
class Promotion:
    """One point climbing one rung.

    Attributes:
        parameters: the point's parameters, without ``fidelity``.
        rung: the rung it climbs to.
        cost: USD of the promotion: each of its repeats on the rung, at the rung's shots.
        value: what ranked it: EI at the top rung per USD (``model``), the objective (``top_k``).
        reason: why, in words, for the sweep's event line.
    """

    parameters: dict[str, Any]
    rung: int
    cost: float
    value: float
    reason: str


@dataclass
class LadderView:
    """What the policy reads of one ladder project in one refit.

    Attributes:
        spec: the ladder project.
        repeats: runs of each point on a rung.
        observations: the project's finished results (the optimizer's ``obs`` shape), every rung.
        busy: ``(point key, rung)`` with an experiment pending or in flight.
        promoted: ``(point key, rung)`` promoted before (the sweep's record in Redis).
        remaining: USD the budget still covers after the work already waiting (None: no limit).
        waiting: parameter columns of the points still to run on rung 0 (the refit's pool).
    """

    spec: ProjectSpec
    repeats: int
    observations: list[dict[str, Any]]
    busy: set[tuple[str, int]] = field(default_factory=set)
    promoted: set[tuple[str, int]] = field(default_factory=set)
    remaining: float | None = None
    waiting: dict[str, np.ndarray] = field(default_factory=dict)


def promotion_cost(
    spec: ProjectSpec, parameters: Mapping[str, Any], rung: int, repeats: int, prices: PriceTable
) -> float:
    """USD of running ``repeats`` tasks of the point on ``rung``, at the rung's shots (else the
    point's, else the circuit's default). A managed simulator is priced at its billed minimum."""
    step = spec.fidelities[rung]
    if not is_managed(step.device):
        return 0.0
    options = spec.circuit
    name, default = (options.shots_param, options.default_shots) if options else ("shots", 1000)
    shots = step.shots or int(spec.arguments(dict(parameters)).get(name, default))
    return repeats * prices.task_cost(step.device, shots)


def decide(
    config: SweepConfiguration, encoder: SpaceEncoder, view: LadderView, prices: PriceTable
) -> list[Promotion]:
    """The promotions of this refit, best first, within the share cap and the budget.

    ``by: model``. For a point ``x`` done on rung ``r``, its value is

        a(x) = EI_top(x) / c_{r+1}(x)

    where ``EI_top`` is the expected improvement of its value at the TOP rung under the joint
    model, over the best top-rung value the model predicts among the points observed so far (the
    plug-in incumbent of noisy EI: only the top rung is what the sweep optimizes), and ``c_{r+1}``
    the USD the promotion costs (every repeat on rung ``r + 1``). The other uses of the same money
    are the other promotions, now and later. The others now compete by ``a`` itself: promotions
    are made best first while the cap and the budget allow. Later ones are the points not yet done
    on rung 0 (pending, in flight, or in the pool): each will be promotable once it is, for
    ``c_1``; the money is worth keeping for them while the best of them, ``w = max EI_top(x') /
    c_1(x')``, beats ``a(x)``. So a point climbs when ``a(x) > w`` and ``EI_top(x)`` is not
    negligible (``NEGLIGIBLE`` of the objective's spread: a promotion that cannot improve the top
    is money kept). Early on, unrun points are uncertain and ``w`` is high: the cheap rung explores
    first. Once rung 0 has nothing left to run, ``w = 0`` and every promotion worth anything is made
    within the cap and the budget. Why EI at the top and not at the next rung: the sweep is
    judged by the top rung; a middle rung's run is worth what it teaches about the top, which the
    joint model carries. Before any result on the top rung the model cannot tell the rungs apart,
    so the highest rung measured stands for it, with a gap of sd ``GAP`` (of the objective's
    spread) per rung between: without it a point known exactly on the cheap rung would have no
    improvement to expect at the top.

    ``by: top_k``: on each rung, the ``top_k`` best points done there by the objective (the
    weighted objectives, minimization sign applied) climb, best first, within the cap and budget.
    """
    spec = view.spec
    rule = spec.promote or PromoteSpec()
    top = len(spec.fidelities) - 1
    rows = [o for o in view.observations if o.get("status") == "completed"]
    by_rung: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        params = row.get("parameters") or {}
        by_rung.setdefault(rung_of(params), {}).setdefault(point_key(params), []).append(row)
    done = {
        rung: {key: found for key, found in points.items() if (key, rung) not in view.busy}
        for rung, points in by_rung.items()
    }
    candidates = [
        (key, rung, found[0]["parameters"])
        for rung, points in done.items()
        if rung < top
        for key, found in points.items()
        if (key, rung + 1) not in view.promoted
        and (key, rung + 1) not in view.busy
        and key not in by_rung.get(rung + 1, {})
    ]
    if not candidates or not config.objectives:  # no objective: nothing to rank points by
        return []
    objectives = _Objective(config, encoder)
    if rule.by == "top_k":
        ranked = _top_k(objectives, done, candidates, rule.top_k or 1)
    else:
        ranked = _by_model(objectives, view, candidates, prices, top)
    room = math.floor(rule.max_share * len(done.get(0, {}))) - sum(1 for _, r in view.promoted if r == 1)
    remaining = view.remaining
    chosen: list[Promotion] = []
    for _key, rung, params, value, why in ranked:
        cost = promotion_cost(spec, params, rung, view.repeats, prices)
        if rung == 1 and room <= 0:
            continue
        if remaining is not None and cost > remaining:
            continue
        plain = {k: v for k, v in params.items() if k != FIDELITY}
        chosen.append(Promotion(plain, rung, cost, value, why))
        room -= rung == 1
        remaining = None if remaining is None else remaining - cost
    return chosen


class _Objective:
    """The sweep's objectives as one value to minimize per result (the GP optimizer's scalarization)."""

    def __init__(self, config: SweepConfiguration, encoder: SpaceEncoder) -> None:
        self.config, self.encoder = config, encoder
        self.objectives = [
            (o.metric, -1.0 if o.goal == "maximize" else 1.0, o.weight) for o in config.objectives
        ]
        self.weights = np.asarray([o.weight for o in config.objectives], dtype=float)

    def values(self, rows: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(X, y, noise, ok)``: encoded points, target, known noise variance, usable rows."""
        obs = build_observations(
            to_rows(rows, self.encoder.names),
            self.encoder,
            self.objectives,
            [SlackFunction(t) for t in self.config.constraints.metrics],
        )
        if not len(obs.rows):
            return obs.X, np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)
        usable = obs.usable
        scalar = Scalarizer.fit(obs.values[usable], self.weights, "weighted", np.random.default_rng(0))
        return obs.X, scalar(obs.values), scalar.variance(obs.variances), usable


def _top_k(
    objective: _Objective,
    done: dict[int, dict[str, list[dict[str, Any]]]],
    candidates: list[tuple[str, int, dict[str, Any]]],
    k: int,
) -> list[tuple[str, int, dict[str, Any], float, str]]:
    wanted = {(key, rung) for key, rung, _ in candidates}
    ranked = []
    for rung, points in done.items():
        keys = list(points)
        rows = [row for key in keys for row in points[key]]
        _, y, _, ok = objective.values(rows)
        if not len(y):
            continue
        owner = [key for key in keys for _ in points[key]]
        means: dict[str, list[float]] = {}
        for key, value, good in zip(owner, y, ok, strict=True):
            if good:
                means.setdefault(key, []).append(float(value))
        best = sorted(means, key=lambda key: float(np.mean(means[key])))[:k]
        for place, key in enumerate(best, start=1):
            if (key, rung) in wanted:
                params = points[key][0]["parameters"]
                why = f"#{place} of {len(means)} on rung {rung} (top_k {k})"
                ranked.append((key, rung + 1, params, -float(np.mean(means[key])), why))
    return sorted(ranked, key=lambda item: -item[3])


def _by_model(
    objective: _Objective,
    view: LadderView,
    candidates: list[tuple[str, int, dict[str, Any]]],
    prices: PriceTable,
    top: int,
) -> list[tuple[str, int, dict[str, Any], float, str]]:
    rows = [o for o in view.observations if o.get("status") == "completed"]
    X, y, noise, ok = objective.values(rows)
    rungs = np.asarray([rung_of(r.get("parameters") or {}) for r in rows], dtype=float)
    if ok.sum() < 3:
        return []  # nothing to model yet
    center, scale = float(np.mean(y[ok])), float(np.std(y[ok])) or 1.0
    F, target = np.column_stack([X, rungs / top])[ok], (y[ok] - center) / scale
    # as the refit's own GP scales: condition on at most MAX_TRAINING rows (the best and a
    # maximin spread), fit the kernel on at most FIT_ROWS of them
    keep = np.union1d(
        training_subset(F, target, MAX_TRAINING), np.flatnonzero(F[:, -1] > 0)
    )  # every higher rung's
    F, target, known = F[keep], target[keep], (noise[ok] / scale**2)[keep]
    post = fit_posterior(F, target, known_noise=known, fit_rows=training_subset(F, target, FIT_ROWS))
    # Before any point ran above rung r the model cannot tell the rungs apart (the length scale
    # over the rung is unidentified): the highest rung measured so far stands for the top, each
    # rung between them adding an unknown gap of sd GAP (the cheap rung is no exact QPU).
    highest = int(rungs[ok].max())

    def at_top(columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        encoded = objective.encoder.encode(columns)
        mean, var = post.predict(np.column_stack([encoded, np.full(len(encoded), highest / top)]))
        assert var is not None
        return mean, var + (top - highest) * GAP**2

    seen = {point_key(r.get("parameters") or {}): r["parameters"] for r in rows}
    mean, _ = at_top(_columns(objective.encoder, list(seen.values())))
    best = float(np.min(mean))
    params = [p for _, _, p in candidates]
    mean, var = at_top(_columns(objective.encoder, params))
    ei = np.exp(log_ei(mean, var, best))
    wait = 0.0
    if view.waiting and len(next(iter(view.waiting.values()))):
        wmean, wvar = at_top(view.waiting)
        # what a waiting point's first promotion will cost (the first waiting point's, as an example)
        step = promotion_cost(view.spec, {n: v[0] for n, v in view.waiting.items()}, 1, view.repeats, prices)
        wait = float(np.max(np.exp(log_ei(wmean, wvar, best)))) / max(step, MIN_USD)
    ranked = []
    for (key, rung, p), gain in zip(candidates, ei.tolist(), strict=True):
        cost = promotion_cost(view.spec, p, rung + 1, view.repeats, prices)
        value = gain / max(cost, MIN_USD)
        if gain < NEGLIGIBLE or value <= wait:
            continue
        why = f"EI at the top {gain * scale:.3g} for ${cost:.4g} (waiting points' best {wait * scale:.3g}/$)"
        ranked.append((key, rung + 1, p, value, why))
    return sorted(ranked, key=lambda item: -item[3])


def _columns(encoder: SpaceEncoder, params: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    return {name: np.asarray([p.get(name) for p in params], dtype=object) for name in encoder.names}
