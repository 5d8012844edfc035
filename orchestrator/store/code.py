"""Projects' code archives in Redis: stored once per hash, kept while a sweep uses them.

An archive (:mod:`core.archive`) is stored under its digest with the set of sweeps that use it.
Storing and letting go are single Lua scripts, so a sweep that stores an archive while another
lets go of it can never leave it deleted under a user: the last sweep to let go deletes it, and
the results keep its name in every row.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from orchestrator.store import keys
from orchestrator.store.connection import bytes_client

# KEYS: archive, users; ARGV: data ('' to note the user only), sweep id. Returns 1 if the
# archive is stored once the call is done (by it or before it), 0 if it is missing.
_PUT = """
redis.call('SADD', KEYS[2], ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if ARGV[1] == '' then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""
# KEYS: archive, users; ARGV: sweep id. Returns 1 if the archive was deleted (no user left).
_RELEASE = """
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


class CodeStore:
    """Archives by digest, with the sweeps using each (see the module docstring)."""

    def __init__(self, client: redis.Redis) -> None:
        self._r = bytes_client(client)  # archives are bytes; the rest of the store decodes
        self._put = self._r.register_script(_PUT)
        self._release = self._r.register_script(_RELEASE)

    def put(self, digest: str, data: bytes | None, sweep_id: str) -> bool:
        """Note that ``sweep_id`` uses ``digest``, storing ``data`` unless already there.

        ``data=None`` notes the user only. Returns whether the archive is stored now; once the
        user is noted no other sweep's release can delete it, so a caller told ``False`` may
        build the bytes and put them.
        """
        return bool(
            self._put(keys=[keys.code(digest), keys.code_users(digest)], args=[data or b"", sweep_id])
        )

    def get(self, digest: str) -> bytes | None:
        value = self._r.get(keys.code(digest))
        return None if value is None else bytes(value)

    def release(self, sweep_id: str, digests: Iterable[str]) -> list[str]:
        """``sweep_id`` no longer uses ``digests``; returns those no sweep uses any more (deleted
        here; the caller deletes their copies in an object store)."""
        return [d for d in digests if self._release(keys=[keys.code(d), keys.code_users(d)], args=[sweep_id])]

    def users(self, digest: str) -> set[str]:
        return {m.decode() for m in self._r.smembers(keys.code_users(digest))}
