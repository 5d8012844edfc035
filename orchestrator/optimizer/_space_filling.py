"""Model-free optimizers: a seeded random order, and a scrambled Sobol sequence.

Both ignore the objective values. They are baselines to compare the GP against on the same
sweep (``optimizer.sampler: random`` or ``sobol``), and the choice for sweeps whose results a
model cannot predict. Early stopping by a rule on intermediate values (the median rule) works
with them as with the GP; shots as a budget and refinement need a model and are refused by the
sweep's validation.
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import qmc

from core.space import ParameterSpace
from orchestrator.optimizer._base import BaseOptimizer, RefitInputs, rank_scores
from orchestrator.optimizer._gp.design import min_distances, nearest_unused
from orchestrator.optimizer._gp.encoding import SpaceEncoder
from orchestrator.optimizer._gp.observations import encode_rows
from orchestrator.optimizer._inputs import point_columns
from orchestrator.optimizer.recommendation import OptimizationRecommendation, Phase

if TYPE_CHECKING:  # core.config imports this package for OptimizerConfig
    from core.config import SweepConfiguration


class _OrderOptimizer(BaseOptimizer):
    """Scores pending points by an order that does not depend on the results."""

    phase: Phase

    def _analyze(self, inputs: RefitInputs) -> OptimizationRecommendation:
        order = self._order(inputs)
        scores = np.empty(len(order))
        scores[order] = rank_scores(len(order))
        stops, _ = self._early_stops(inputs)
        summary = f"{len(inputs.rows)} results; {self.phase.replace('_', '-')} order ({self.name} sampler)"
        if stops:
            summary += f"; {len(stops)} to stop early"
        return OptimizationRecommendation(
            priority_adjustments=dict(zip(inputs.pending.tolist(), scores.tolist(), strict=True)),
            early_stops=stops,
            sampler=self.name,
            phase=self.phase,
            summary=summary + ".",
        )

    @abstractmethod
    def _order(self, inputs: RefitInputs) -> np.ndarray:
        """A permutation of ``inputs.pending`` positions, first to run first."""


class RandomOptimizer(_OrderOptimizer):
    """Runs the pending points in a random order, fixed by the sweep's seed.

    Each point's place comes from a seeded hash of its index, so the order is the same at every
    refit and on every machine, and a point keeps its place while others finish.
    """

    name = "random"
    phase: Phase = "random"

    def _order(self, inputs: RefitInputs) -> np.ndarray:
        from core.plan import priority  # the scramble adaptive sweeps start from

        keys = priority(inputs.pending, True, self.config.seed)
        return np.argsort(-keys, kind="stable")


@functools.lru_cache(maxsize=16)
def _sobol(dims: int, m: int, seed: int) -> np.ndarray:
    """The first 2**m points of the sweep's scrambled Sobol sequence (read-only, cached)."""
    unit = qmc.Sobol(dims, scramble=True, seed=seed).random_base2(m)
    unit.flags.writeable = False
    return unit


class SobolOptimizer(_OrderOptimizer):
    """Runs the pending points along a scrambled Sobol sequence.

    The next ``batch_size`` points of the sequence (the runs so far skipped, so successive refits
    continue it) are mapped to their nearest pending points; the rest follow farthest-first from
    everything run, in flight or picked.
    """

    name = "sobol"
    phase: Phase = "space_filling"

    def __init__(self, config: SweepConfiguration, space: ParameterSpace | None = None) -> None:
        super().__init__(config, space)
        self.encoder = SpaceEncoder(self.space.info)

    def _encode(self, indices: np.ndarray, inputs: RefitInputs) -> np.ndarray:
        if len(indices) == 0:
            return np.zeros((0, self.encoder.width))
        return self.encoder.encode(point_columns(self.space, indices, inputs.added))

    def _order(self, inputs: RefitInputs) -> np.ndarray:
        m = len(inputs.pending)
        if self.encoder.width == 0 or m == 0:
            return np.arange(m)  # no parameter varies: every point is the same, keep their order
        U = self._encode(inputs.pending, inputs)
        ok = np.flatnonzero(np.all(np.isfinite(U), axis=1))
        known = np.vstack(
            [encode_rows(self.encoder, inputs.run_rows), self._encode(inputs.in_flight, inputs)]
        )
        known = known[np.all(np.isfinite(known), axis=1)]
        skip, head = inputs.runs, min(self.options.batch_size, len(ok))
        unit = _sobol(self.encoder.n_params, max(int(np.ceil(np.log2(skip + head + 1))), 1), self.config.seed)
        first = ok[nearest_unused(self.encoder.from_unit(unit[skip : skip + head]), U[ok])]
        rest = np.setdiff1d(ok, first)
        covered = np.vstack([known, U[first]])
        rest = rest[np.argsort(-min_distances(U[rest], covered), kind="stable")]
        return np.concatenate([first, rest, np.setdiff1d(np.arange(m), ok)]).astype(np.int64)
