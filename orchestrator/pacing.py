"""How much the coordinator publishes per queue, and how many experiments go in one message.

Both follow the queue's measured completion rate, so they adapt to the experiments' length
without configuration:

* the *window* (experiments published but not started) is at least 2 x the queue's consumers,
  which keeps every consumer busy when experiments take long and stays short so that a
  re-scoring by the optimizer takes effect soon. For short experiments that runs dry (a worker
  finishes its two messages faster than the coordinator hears of it: no-ops ran at a fifth of
  raw Celery's rate), so the window also covers ``WINDOW_SECONDS`` of the measured rate, up to
  ``WINDOW_MAX`` shared by the sweeps on the queue. The bound stays "a second of work": a
  re-scoring by the optimizer reorders what comes after it.
* the *batch* (experiments per message) is about ``settings.batch_seconds`` of one consumer's
  work. Celery costs about a millisecond of worker CPU per message, most of the path for no-op
  experiments (``benchmarks/overhead.py``); experiments longer than ``batch_seconds`` keep one
  message each, as Flower shows them. A batch never takes more than a consumer's share of half
  the window. A batch has a fixed cost of its own (its claim, its last chunk of rows, Celery's
  hand-over: about 6 ms on a 2-core host), so 0.5-s batches gave 10-ms experiments 0.92
  utilization where 0.25-s ones gave 0.90; near a sweep's end they shrink (coordinator).

Run times and completion counts are also kept per sweep: how long experiments take is a property
of the sweep, and a sweep that follows a no-op one on the same queue would otherwise start with
batches of 200 10-ms experiments, 2 s of work a message, and leave one consumer idle for the last
of them (utilization 0.74 in ``benchmarks/peers.py``).

"Work" is the experiments' own run time (``execution_time``), when the coordinator reports it,
not the completion rate: the rate includes the per-message cost that batching is there to
remove, so on a loaded machine 10-ms experiments completed at a third of their work rate,
stayed one per message and kept paying that cost (``benchmarks/peers.py``).
"""

from __future__ import annotations

import math
import time
from collections import deque

from core.settings import Settings

WINDOW_SECONDS = 1.0  # two 0.5-s batches per consumer (see batch)
WINDOW_MAX = 1_000
BATCH_MAX = 200
RATE_SPAN = 2.0  # seconds of completions the rate is measured over
RATE_MIN_SPAN = 0.5  # ... and at least this long, so that the first result is not a burst

Completion = tuple[float, int, "float | None", "str | None"]  # when, results, their run time, sweep


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
        self._completions: dict[str, deque[Completion]] = {}
        self._since: dict[str, float] = {}

    def completed(
        self, queue: str, n: int, now: float, seconds: float | None = None, sweep: str | None = None
    ) -> None:
        """``n`` results of ``sweep`` from ``queue`` arrived at ``now``; ``seconds``: their summed run time."""
        if not self._recent(queue):
            self._since[queue] = now  # results start (again): the rate's span starts here
        self._completions.setdefault(queue, deque()).append((now, n, seconds, sweep))

    def _recent(self, queue: str, sweep: str | None = None) -> list[Completion] | deque[Completion]:
        log = self._completions.get(queue, deque())
        horizon = time.monotonic() - RATE_SPAN
        while log and log[0][0] < horizon:
            log.popleft()
        return log if sweep is None else [c for c in log if c[3] == sweep]

    def rate(self, queue: str, sweep: str | None = None) -> float:
        """Results per second from ``queue`` over the last ``RATE_SPAN`` seconds, or over the time
        since results started if that is shorter (the first seconds of a sweep are not counted as
        idle: they would hold the window, and the batches it caps, at a fraction of the flow).
        With ``sweep``, only that sweep's results count."""
        recent = self._recent(queue, sweep)
        if not recent:
            return 0.0
        span = min(RATE_SPAN, max(RATE_MIN_SPAN, time.monotonic() - self._since.get(queue, -math.inf)))
        return sum(c[1] for c in recent) / span

    def duration(self, queue: str, sweep: str | None = None) -> float | None:
        """Mean run time of the recent experiments of ``queue`` (of ``sweep``, when given; None
        when none reported one)."""
        timed = [(c[1], c[2]) for c in self._recent(queue, sweep) if c[2] is not None]
        count = sum(n for n, _ in timed)
        return max(sum(s for _, s in timed) / count, 1e-6) if count else None

    def window(self, queue: str, sharing: int = 1, by_work: bool = False, sweep: str | None = None) -> int:
        """Experiments one of ``sharing`` sweeps on ``queue`` (``sweep``, when given) may have
        published but not started.

        With ``by_work`` (a queue whose messages may batch) it also covers ``WINDOW_SECONDS`` of
        the consumers' work at the measured run time: the completion rate alone, slowed by the
        per-message cost, would cap the batches that remove that cost.
        """
        if self.fixed:
            return self.fixed
        consumers = self.consumers.get(queue, 0)
        floor = max(2, self.min_window or 0, 2 * consumers)
        share = max(1, sharing)
        per_second = self.rate(queue) / share
        if sweep is not None:  # its own flow, not the one of the sweep before it on the queue
            per_second = min(per_second, self.rate(queue, sweep))
        duration = self.duration(queue, sweep) if by_work else None
        if duration:
            per_second = max(per_second, max(1, consumers) / duration / share)
        return max(floor, min(WINDOW_MAX, math.ceil(per_second * WINDOW_SECONDS)))

    def batch(self, queue: str, sharing: int = 1, sweep: str | None = None, window: int | None = None) -> int:
        """Experiments per message on ``queue`` (one whose messages may batch), for ``sweep``'s
        experiments when given: one each until that sweep's first results are in. Pass the
        queue's ``window`` (by work) when it is already known."""
        consumers = max(1, self.consumers.get(queue, 0))
        if window is None:
            window = self.window(queue, sharing, by_work=True, sweep=sweep)
        duration = self.duration(queue, sweep)
        per_consumer = 1 / duration if duration else self.rate(queue, sweep) / consumers
        return max(
            1,
            min(
                BATCH_MAX,
                int(per_consumer * self.batch_seconds),
                window // (2 * consumers),
            ),
        )
