"""The lease heartbeat of a worker process: the leases of the experiments it runs stay alive.

One daemon thread per process refreshes every held lease each ``ttl / 3`` seconds in one script
call, instead of a thread per experiment. Started lazily, so each prefork child gets its own
after the fork.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from orchestrator.store import SweepState

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Keeps the leases of the experiments this process runs alive.

    Args:
        state: the process's sweep state (made lazily after the fork).
        ttl: the leases' time to live, in seconds.
    """

    def __init__(self, state: Callable[[], SweepState], ttl: float) -> None:
        self._state = state
        self.ttl = ttl
        self._held: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def hold(self, sweep_id: str, index: int, token: str) -> None:
        """Keep the experiment's lease (held with ``token``) alive until :meth:`drop`."""
        self.hold_many(sweep_id, [index], token)

    def hold_many(self, sweep_id: str, indices: list[int], token: str) -> None:
        """:meth:`hold` for each of ``indices`` (a batch's experiments, all held with ``token``)."""
        with self._lock:
            self._held.update({(sweep_id, index): token for index in indices})
            if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="lease-keeper", daemon=True)
                self._thread.start()

    def drop(self, sweep_id: str, index: int) -> None:
        """Stop refreshing the experiment's lease (its run is over)."""
        self.drop_many(sweep_id, [index])

    def drop_many(self, sweep_id: str, indices: list[int]) -> None:
        """:meth:`drop` for each of ``indices``."""
        with self._lock:
            for index in indices:
                self._held.pop((sweep_id, index), None)

    def _loop(self) -> None:
        failing = False
        while True:
            time.sleep(self.ttl / 3)
            with self._lock:
                leases = [(sweep_id, index, token) for (sweep_id, index), token in self._held.items()]
            if not leases:
                continue
            try:
                self._state().refresh_leases(leases, self.ttl)
            except Exception as exc:  # noqa: BLE001 - a missed heartbeat is retried on the next tick
                if not failing:  # once per outage, not once per tick
                    log.warning("lease heartbeat failed for %d experiment(s): %s", len(leases), exc)
                failing = True
                continue
            if failing:
                log.warning("lease heartbeat restored")
            failing = False
