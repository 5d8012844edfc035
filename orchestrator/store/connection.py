"""Redis clients for a broker URL."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

#: what a Redis call raises while the server is unreachable (down, restarting, loading its AOF)
STORE_ERRORS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)


def connect(
    url: str, *, decode: bool = True, timeout: float | None = None, retry: bool = True
) -> redis.Redis:
    """A Redis client for ``url`` (``redis://``, ``rediss://`` or ``redis+socket://``).

    ``retry=False`` answers at once when the server is down: redis-py's default retries a
    refused connection three times with up to seconds of backoff, which a readiness probe
    or a shutdown (whose connection the server closes) only waits out.
    """
    extra = {} if retry else {"retry": Retry(NoBackoff(), 0)}
    if url.startswith("redis+socket://"):
        path = url[len("redis+socket://") :].split("?")[0]
        return redis.Redis(unix_socket_path=path, decode_responses=decode, socket_timeout=timeout, **extra)
    return redis.Redis.from_url(url, decode_responses=decode, socket_timeout=timeout, **extra)


def bytes_client(client: redis.Redis) -> redis.Redis:
    """A client on the same server as ``client`` that returns bytes (the Braket ledgers decode themselves)."""
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": False}
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))


def ping(url: str, timeout: float | None = None) -> bool:
    """True if a Redis answers at ``url``."""
    try:
        return bool(connect(url, timeout=timeout, retry=False).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
