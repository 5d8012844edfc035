"""Code archives in Redis: stored once per hash, deleted when the last sweep using them lets go."""

from __future__ import annotations

import redis

from orchestrator.store import connect
from orchestrator.store.code import CodeStore


def test_stored_once_and_kept_while_a_sweep_uses_it(redis_url: str) -> None:
    client: redis.Redis = connect(redis_url)
    code = CodeStore(client)
    blob = bytes(range(256)) * 4  # bytes, not text
    assert code.put("d1", blob, "sweep-a") is True
    assert code.put("d1", b"other bytes", "sweep-b") is False  # stored once per hash
    assert code.get("d1") == blob and code.users("d1") == {"sweep-a", "sweep-b"}
    assert code.release("sweep-a", ["d1"]) == []
    assert code.get("d1") == blob
    assert code.release("sweep-b", ["d1"]) == ["d1"]
    assert code.get("d1") is None and code.users("d1") == set()
    assert code.release("sweep-b", ["d1"]) == ["d1"]  # again: nothing left, nothing raised


def test_users_only_when_the_bytes_live_elsewhere(redis_url: str) -> None:
    code = CodeStore(connect(redis_url))
    assert code.put("d2", None, "sweep-a") is False
    assert code.get("d2") is None and code.users("d2") == {"sweep-a"}
