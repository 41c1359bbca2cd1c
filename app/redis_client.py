"""The process's Redis connection pool (presence, socket limits, health), when REDIS_URL is set."""

from __future__ import annotations

import redis
from flask import Flask, current_app

EXTENSION_KEY = "notify.redis"


def connect(url: str) -> redis.Redis:
    """A client with timeouts everywhere: a dead Redis fails fast, never hangs a greenlet."""
    return redis.Redis.from_url(
        url,
        socket_timeout=2,
        socket_connect_timeout=2,
        health_check_interval=15,
        retry_on_timeout=False,
    )


def init_redis(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    app.extensions[EXTENSION_KEY] = connect(url) if url else None


def redis_client() -> redis.Redis | None:
    client: redis.Redis | None = current_app.extensions.get(EXTENSION_KEY)
    return client
