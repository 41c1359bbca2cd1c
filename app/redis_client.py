"""The process's Redis connection pool (presence, socket and HTTP limits, health), when
REDIS_URL is set."""

from __future__ import annotations

import redis
from flask import Flask, current_app

EXTENSION_KEY = "notify.redis"
#: Seconds a caller waits for a free connection when all ``REDIS_POOL_LIMIT`` are in use.
POOL_WAIT = 5


def connect(url: str, pool_limit: int = 50) -> redis.Redis:
    """A client with timeouts everywhere: a dead Redis fails fast, never hangs a greenlet.

    The pool is bounded and blocking: a burst of handshakes waits briefly for a connection
    instead of failing with ``Too many connections`` (redis-py's default pool stops at 100 and
    raises), which would let rate limits through and skip presence updates.
    """
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=pool_limit,
        timeout=POOL_WAIT,
        socket_timeout=2,
        socket_connect_timeout=2,
        health_check_interval=15,
        retry_on_timeout=False,
    )
    return redis.Redis(connection_pool=pool)


def init_redis(app: Flask) -> None:
    """One client per app; the rate limiters (``RATELIMIT_STORAGE_OPTIONS``) share its pool."""
    url = app.config.get("REDIS_URL")
    client = connect(url, app.config["REDIS_POOL_LIMIT"]) if url else None
    app.extensions[EXTENSION_KEY] = client
    if client is not None:
        app.config["RATELIMIT_STORAGE_OPTIONS"] = app.config["RATELIMIT_STORAGE_OPTIONS"] | {
            "connection_pool": client.connection_pool
        }


def redis_client() -> redis.Redis | None:
    client: redis.Redis | None = current_app.extensions.get(EXTENSION_KEY)
    return client
