"""The process's Redis client: a bounded, blocking pool shared with the rate limiters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from app.registry import services

pytestmark = pytest.mark.mariadb  # needs the run's Redis


def test_presence_and_both_rate_limiters_share_one_bounded_blocking_pool(
    make_app: Callable[..., Any],
) -> None:
    app = make_app(REDIS_POOL_LIMIT="7")
    client = services(app).redis
    pool = client.connection_pool
    assert isinstance(pool, redis.BlockingConnectionPool) and pool.max_connections == 7
    assert app.config["RATELIMIT_STORAGE_OPTIONS"]["connection_pool"] is pool
    socket_storage = services(app).socket_limits.limiter.storage.storage
    assert socket_storage.connection_pool is pool
    (http_limiter,) = app.extensions["limiter"]  # Flask-Limiter keeps a set per app
    assert http_limiter.storage.storage.connection_pool is pool
