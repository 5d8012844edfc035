"""One message ahead while a batch runs: the next batch waits in the worker, not in Redis.

With late acks and ``worker_prefetch_multiplier=1`` a worker holds no more messages than it has
processes, so a process that ends a batch waits for its ack, a fetch from Redis and the
hand-over before the next one starts: about 9 ms a batch on a 2-core host, 4 % of the time of
10-ms experiments (``benchmarks/peers.py``). A larger multiplier for the whole worker would
also keep long experiments waiting behind each other while another machine sits idle. A batch
is at most ``batch_seconds`` of work, so the one message held beside it costs another machine
no more than that; the coordinator's window (two batches per consumer) leaves the rest in Redis.
"""

from __future__ import annotations

from typing import Any

from celery.worker.request import Request
from kombu.common import QoS


class BatchRequest(Request):
    """A batch message's request: its worker may take one more message until this one is done."""

    _qos: QoS | None = None

    def hold_next(self, qos: QoS) -> None:
        self._qos = qos
        qos.increment_eventually()

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
        if self._qos is not None:
            self._qos.decrement_eventually()
            self._qos = None


def hold_next(sender: Any = None, request: Any = None, **_: Any) -> None:
    """``task_received`` (in the worker's main process; ``sender`` is its consumer)."""
    if isinstance(request, BatchRequest):
        request.hold_next(sender.qos)
