"""What paid Braket work keeps in Redis, on one connection and under one key prefix."""

from __future__ import annotations

import redis

from orchestrator.store import keys
from orchestrator.store.budget import BudgetLedger
from orchestrator.store.slots import Caps, ConcurrencyGate
from orchestrator.store.submissions import SubmissionStore
from orchestrator.store.throttle import TokenBucket


class BraketLedgers:
    """The Braket ledgers of a deployment: what an executor asks for operations, never for a client.

    Args:
        client: Redis shared by every worker and the coordinator.
        prefix: the deployment's key prefix (tests give each test its own).

    Attributes:
        budget: money reserved, settled and released against the sweep's and the global budget.
        submissions: each attempt's submission record (a redelivered submit finds its task).
    """

    def __init__(self, client: redis.Redis, *, prefix: str = keys.PREFIX) -> None:
        self._client, self._prefix = client, prefix
        self.budget = BudgetLedger(client, prefix=prefix)
        self.submissions = SubmissionStore(client, prefix=prefix)

    def slots(self, limits: Caps) -> ConcurrencyGate:
        """Open quantum tasks per device, bounded by ``limits``."""
        return ConcurrencyGate(self._client, limits, prefix=self._prefix)

    def bucket(self, name: str, *, rate: float, burst: float | None = None) -> TokenBucket:
        """The token bucket ``name``, shared by every worker (see :class:`TokenBucket`)."""
        return TokenBucket(self._client, name, rate=rate, burst=burst, prefix=self._prefix)
