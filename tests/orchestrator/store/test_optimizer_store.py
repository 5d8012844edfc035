"""The optimizer store's reads for the dashboard, against a real Redis."""

from __future__ import annotations

import redis

from core.protocol import Lifecycle
from orchestrator.store import SweepState, keys


def test_top_pending_ranks_across_queues_by_score(client: redis.Redis) -> None:
    state = SweepState(client)
    state.register("s-top", {"state": Lifecycle.RUNNING.value, "total": 6})
    for queue, scored in {
        "local_cpu": {"0": 0.2, "1": 0.9, "2": 0.5},
        "braket_sim": {"3": 0.95, "4": 0.1},
    }.items():
        client.zadd(keys.pending("s-top", queue), scored)
    store = state.optimizer()
    assert store.top_pending("s-top", 3) == [3, 1, 2]
    assert store.top_pending("s-top", 10) == [3, 1, 2, 0, 4]
    assert store.top_pending("nothing-here", 3) == []
