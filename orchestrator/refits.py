"""The optimizer's refits inside the coordinator (``optimize_inline``): when an adaptive sweep is
refit, in a thread of its own, and how many experiments a sweep with a run budget may publish
before the next refit lands.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from core.config import SweepConfiguration
from orchestrator.pacing import Pacing
from orchestrator.store import SweepState

log = logging.getLogger(__name__)


class Refits:
    """One sweep's refits in the coordinator's process.

    A sweep with a run budget (``max_experiments``) and objectives waits for the model: its first
    publish waits for the first refit (the startup design), and each refit lets out one experiment
    per consumer, so the optimizer (not a stale order) picks every one of its ``max_experiments``.

    Args:
        sweep_id: the sweep.
        config: its configuration (adaptive sampling, objectives, run budget, batch size).
        queues: the resource queues its projects use, whose consumers a refit lets out.
        state: the sweep state the refit reads and re-scores.
        pacing: the coordinator's pacing (its live consumer count).
        interval: seconds between refits (``settings.optimizer_interval``).
        inline: refits run here; otherwise (the beat refits) this only counts results.
        pool_size: points a refit scores (``settings.candidate_pool``).
    """

    def __init__(
        self,
        sweep_id: str,
        config: SweepConfiguration,
        queues: tuple[str, ...],
        *,
        state: SweepState,
        pacing: Pacing,
        interval: float,
        inline: bool,
        pool_size: int = 50_000,
    ) -> None:
        self.sweep_id, self.config, self.queues = sweep_id, config, queues
        self.state, self.pacing, self.interval, self.pool_size = state, pacing, interval, pool_size
        # a fidelity ladder's refits promote its points, in a fixed order too
        self.inline = inline and (config.adaptive_sampling or any(p.fidelities for p in config.projects))
        self.gated = bool(
            self.inline
            and config.adaptive_sampling
            and config.objectives
            and config.max_experiments is not None
        )
        #: experiments it may publish before the next refit lands
        self.allowance: float = 0 if self.gated else math.inf
        self.new_results = 0  # since the last refit
        self._last = 0.0
        self._thread: threading.Thread | None = None

    def maybe_start(self) -> None:
        """Start a refit if one is due: every ``interval``, sooner once a batch's worth of new
        results is in, and at once when a gated sweep has used its allowance and has news."""
        if not self.inline or (self._thread is not None and self._thread.is_alive()):
            return
        now = time.monotonic()
        enough = self.new_results >= self.config.optimizer.batch_size
        waiting = self.allowance <= 0 and (self.new_results or not self._last)
        if not waiting and now - self._last < (self.interval / 5 if enough else self.interval):
            return
        self._last, self.new_results = now, 0
        # In a thread: a refit of a large sweep takes seconds, and publishing must not wait for it.
        self._thread = threading.Thread(target=self._refit, daemon=True, name=f"refit-{self.sweep_id}")
        self._thread.start()

    def _refit(self) -> None:
        from orchestrator.optimizer.service import refit_sweep

        try:
            refit_sweep(self.state, self.sweep_id, pool_size=self.pool_size)
        except Exception:  # noqa: BLE001 - a failed refit must not stop the sweep
            log.exception("optimizer refit failed for %s", self.sweep_id)
        finally:
            if self.gated:
                self.allowance = max(1, sum(self.pacing.consumers.get(q, 0) for q in self.queues))
