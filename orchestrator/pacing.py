"""How much the coordinator publishes per queue, and how many experiments go in one message.

Both follow the queue's measured completion rate, so they adapt to the experiments' length
without configuration:

* the *window* (experiments published but not started) is at least 2 x the queue's consumers,
  which keeps every consumer busy when experiments take long and stays short so that a
  re-scoring by the optimizer takes effect soon. For short experiments that runs dry (a worker
  finishes its two messages faster than the coordinator hears of it: no-ops ran at a fifth of
  raw Celery's rate), so the window also covers ``WINDOW_SECONDS`` of the measured rate, up to
  ``WINDOW_MAX`` shared by the sweeps on the queue. The bound stays "half a second of work".
* the *batch* (experiments per message) is about ``settings.batch_seconds`` of one consumer's
  work. Celery costs about a millisecond of worker CPU per message, most of the path for no-op
  experiments (``benchmarks/overhead.py``); experiments longer than ``batch_seconds`` keep one
  message each, as Flower shows them. A batch never takes more than a consumer's share of half
  the window.

"Work" is the experiments' own run time (``execution_time``), when the coordinator reports it,
not the completion rate: the rate includes the per-message cost that batching is there to
remove, so on a loaded machine 10-ms experiments completed at a third of their work rate,
stayed one per message and kept paying that cost (``benchmarks/peers.py``).
"""

from __future__ import annotations

import math
import time
from collections import deque

from orchestrator.settings import Settings

WINDOW_SECONDS = 0.5
WINDOW_MAX = 1_000
BATCH_MAX = 200
RATE_SPAN = 2.0  # seconds of completions the rate is measured over
RATE_MIN_SPAN = 0.5  # ... and at least this long, so that the first result is not a burst


class Pacing:
    """Per-queue completion rates and consumer counts, and the window and batch they give.

    Args:
        min_window: the least window per queue (default: 2 x its consumers);
            ``settings.publish_window``, when set, fixes the window instead.
    """

    def __init__(self, settings: Settings, min_window: int | None = None) -> None:
        self.fixed = settings.publish_window
        self.min_window = min_window
        self.batch_seconds = settings.batch_seconds
        self.consumers: dict[str, int] = {}
        self._completions: dict[str, deque[tuple[float, int, float | None]]] = {}
        self._since: dict[str, float] = {}

    def completed(self, queue: str, n: int, now: float, seconds: float | None = None) -> None:
        """``n`` results from ``queue`` arrived at ``now``; ``seconds``: their summed run time."""
        if not self._recent(queue):
            self._since[queue] = now  # results start (again): the rate's span starts here
        self._completions.setdefault(queue, deque()).append((now, n, seconds))

    def _recent(self, queue: str) -> deque[tuple[float, int, float | None]]:
        log = self._completions.get(queue, deque())
        horizon = time.monotonic() - RATE_SPAN
        while log and log[0][0] < horizon:
            log.popleft()
        return log

    def rate(self, queue: str) -> float:
        """Results per second from ``queue`` over the last ``RATE_SPAN`` seconds, or over the time
        since results started if that is shorter (the first seconds of a sweep are not counted as
        idle: they would hold the window, and the batches it caps, at a fraction of the flow)."""
        recent = self._recent(queue)
        if not recent:
            return 0.0
        span = min(RATE_SPAN, max(RATE_MIN_SPAN, time.monotonic() - self._since.get(queue, -math.inf)))
        return sum(n for _, n, _ in recent) / span

    def duration(self, queue: str) -> float | None:
        """Mean run time of the recent experiments of ``queue`` (None when none reported one)."""
        timed = [(n, seconds) for _, n, seconds in self._recent(queue) if seconds is not None]
        count = sum(n for n, _ in timed)
        return max(sum(s for _, s in timed) / count, 1e-6) if count else None

    def window(self, queue: str, sharing: int = 1, by_work: bool = False) -> int:
        """Experiments one of ``sharing`` sweeps on ``queue`` may have published but not started.

        With ``by_work`` (a queue whose messages may batch) it also covers ``WINDOW_SECONDS`` of
        the consumers' work at the measured run time: the completion rate alone, slowed by the
        per-message cost, would cap the batches that remove that cost.
        """
        if self.fixed:
            return self.fixed
        consumers = self.consumers.get(queue, 0)
        floor = max(2, self.min_window or 0, 2 * consumers)
        per_second = self.rate(queue)
        duration = self.duration(queue) if by_work else None
        if duration:
            per_second = max(per_second, max(1, consumers) / duration)
        return max(floor, min(WINDOW_MAX, math.ceil(per_second * WINDOW_SECONDS / max(1, sharing))))

    def batch(self, queue: str, sharing: int = 1) -> int:
        """Experiments per message on ``queue`` (one whose messages may batch)."""
        consumers = max(1, self.consumers.get(queue, 0))
        duration = self.duration(queue)
        per_consumer = 1 / duration if duration else self.rate(queue) / consumers
        return max(
            1,
            min(
                BATCH_MAX,
                int(per_consumer * self.batch_seconds),
                self.window(queue, sharing, by_work=True) // (2 * consumers),
            ),
        )
