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
    assert code.put("d1", b"other bytes", "sweep-b") is True  # stored once per hash: kept as it was
    assert code.get("d1") == blob and code.users("d1") == {"sweep-a", "sweep-b"}
    assert code.release("sweep-a", ["d1"]) == []
    assert code.get("d1") == blob
    assert code.release("sweep-b", ["d1"]) == ["d1"]
    assert code.get("d1") is None and code.users("d1") == set()
    assert code.release("sweep-b", ["d1"]) == ["d1"]  # again: nothing left, nothing raised


def test_a_user_noted_first_keeps_the_archive_from_another_sweeps_release(redis_url: str) -> None:
    # submit notes its sweep as a user before it builds the bytes: a sweep closing meanwhile
    # must not delete what the new one is about to use
    code = CodeStore(connect(redis_url))
    assert code.put("d2", b"bytes", "old") is True
    assert code.put("d2", None, "new") is True  # there already: nothing to build
    assert code.release("old", ["d2"]) == [] and code.get("d2") == b"bytes"
    assert code.put("d3", None, "new") is False  # missing: the caller builds and puts it
    assert code.get("d3") is None and code.users("d3") == {"new"}
