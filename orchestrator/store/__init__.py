"""The one door to Redis: every key, Lua script and Redis call of the system lives in this package.

* :mod:`~orchestrator.store.keys`: the key layout, documented in one place;
* :class:`SweepState` (:mod:`~orchestrator.store.sweeps`): sweeps and their experiments: claim,
  lease, record, release, lifecycle and events; its Lua scripts in :mod:`~orchestrator.store.scripts`;
* :class:`PendingSets` (:mod:`~orchestrator.store.pending`, ``SweepState.pending``): the pending
  and queued experiments of the coordinator, and every way back to pending;
* :class:`ResultStream` (:mod:`~orchestrator.store.results`, ``SweepState.results``): the result
  rows the coordinator reads, and acks once they are in Parquet;
* :class:`Registry` (:mod:`~orchestrator.store.registry`, ``SweepState.registry``): the live
  workers, the messages they hold, the coordinators and their sweep locks;
* :class:`OptimizerStore` (:mod:`~orchestrator.store.optimizer`): what the optimizer reads and writes;
* :class:`BraketLedgers` (:mod:`~orchestrator.store.ledgers`, ``SweepState.braket_ledgers``): what
  managed Braket work keeps, each part in its module: :mod:`~orchestrator.store.budget`,
  ``throttle``, ``slots``, ``submissions``.

Conformance tests of every atomic operation run against a real Redis: ``tests/orchestrator/store``.
"""

from __future__ import annotations

from orchestrator.store.connection import STORE_ERRORS, connect
from orchestrator.store.ledgers import BraketLedgers
from orchestrator.store.registry import HOLD_GRACE_S, Registry
from orchestrator.store.sweeps import Record, SweepState

__all__ = [
    "BraketLedgers",
    "HOLD_GRACE_S",
    "STORE_ERRORS",
    "Record",
    "Registry",
    "SweepState",
    "connect",
]
