"""One message ahead while a batch runs: the next batch waits in the worker, not in Redis.

With late acks and ``worker_prefetch_multiplier=1`` a worker holds no more messages than it has
processes, so a process that ends a batch waits for its ack, a fetch from Redis and the
hand-over before the next one starts: a few ms a batch, a few % of the time of 10-ms
experiments (``benchmarks/peers.py``). A larger multiplier for the whole worker would also keep
long experiments waiting behind each other while another machine sits idle. So only a batch
that is *running* lets its worker take one more message (a held one does not, or each would
fetch the next); a batch is at most ``batch_seconds`` of work, and the coordinator's window
(two batches per consumer, over all machines) leaves the rest in Redis for the others.
"""

from __future__ import annotations

from typing import Any

from celery.worker.request import Request
from kombu.common import QoS


class BatchRequest(Request):
    """A batch message's request (in the worker's main process)."""

    qos: QoS | None = None  # the consumer's prefetch count (set when the message arrives)
    _holding = False

    def on_accepted(self, pid: int, time_accepted: float) -> None:
        super().on_accepted(pid, time_accepted)
        if self.qos is not None and not self.acknowledged and not self._holding:
            self._holding = True
            self.qos.increment_eventually()  # one more message while this batch runs

    def acknowledge(self) -> None:
        try:
            super().acknowledge()
        finally:
            self._release()

    def reject(self, requeue: bool = False) -> None:
        try:
            super().reject(requeue)
        finally:
            self._release()

    def _release(self) -> None:
        if self._holding and self.qos is not None:
            self._holding = False
            self.qos.decrement_eventually()


def received(sender: Any = None, request: Any = None, **_: Any) -> None:
    """``task_received``: ``sender`` is the consumer, whose prefetch count a batch raises while it runs."""
    if isinstance(request, BatchRequest):
        request.qos = sender.qos
