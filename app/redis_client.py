"""The process's Redis client (presence, socket and HTTP limits, health), when REDIS_URL is set:
one Redis (``redis://``, ``rediss://``) or a Redis Cluster (``redis+cluster://host:port,...``)."""

from __future__ import annotations

from typing import Any, TypeAlias
from urllib.parse import unquote, urlsplit

import redis
from flask import Flask
from redis.cluster import ClusterNode, RedisCluster

from app.registry import services

#: Seconds a caller waits for a free connection when all ``REDIS_POOL_LIMIT`` are in use.
POOL_WAIT = 5
#: ``redis+cluster://[user:password@]host:port[,host:port...]``: any reachable node of the
#: cluster will do as a starting point, the client learns the rest (``CLUSTER SLOTS``).
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
#: Either kind: both take ``pipeline(transaction=False)`` and the single-key commands we use.
Client: TypeAlias = "redis.Redis | RedisCluster"


def is_cluster(url: str | None) -> bool:
    return bool(url) and urlsplit(url or "").scheme.lower() in CLUSTER_SCHEMES


def cluster_options(url: str) -> dict[str, Any]:
    """``RedisCluster`` keyword arguments for a ``redis+cluster://`` URL."""
    parts = urlsplit(url)
    node: Any = ClusterNode  # untyped in redis-py
    nodes = []
    for location in parts.netloc.rpartition("@")[2].split(","):
        host, _, port = location.strip().rpartition(":")
        nodes.append(node(host or "127.0.0.1", int(port or 6379)))
    options: dict[str, Any] = {"startup_nodes": nodes}
    if parts.username:
        options["username"] = unquote(parts.username)
    if parts.password:
        options["password"] = unquote(parts.password)
    if parts.scheme.lower().startswith("rediss"):
        options["ssl"] = True
    return options


def connect_cluster(url: str, **options: Any) -> RedisCluster:
    return RedisCluster(**cluster_options(url), **options)


def connect(url: str, pool_limit: int = 50) -> Client:
    """A client with timeouts everywhere: a dead Redis fails fast, never hangs a greenlet.

    The pool is bounded and blocking: a burst of handshakes waits briefly for a connection
    instead of failing with ``Too many connections`` (redis-py's default pool stops at 100 and
    raises), which would let rate limits through and skip presence updates. On a cluster the
    bound is per node (redis-py's cluster pools do not block).
    """
    timeouts: dict[str, Any] = {
        "socket_timeout": 2,
        "socket_connect_timeout": 2,
        "health_check_interval": 15,
        "retry_on_timeout": False,
    }
    if is_cluster(url):
        return connect_cluster(url, max_connections=pool_limit, **timeouts)
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=pool_limit, timeout=POOL_WAIT, **timeouts
    )
    return redis.Redis(connection_pool=pool)


def make_redis(app: Flask) -> Client | None:
    """One client per app; the rate limiters (``RATELIMIT_STORAGE_OPTIONS``) share its pool
    (on a cluster, ``limits`` keeps a cluster client of its own): the one setting of theirs
    not written by ``config.profiles``, since the pool exists only now."""
    url = app.config.get("REDIS_URL")
    client = connect(url, app.config["REDIS_POOL_LIMIT"]) if url else None
    if isinstance(client, redis.Redis):
        app.config["RATELIMIT_STORAGE_OPTIONS"] = app.config["RATELIMIT_STORAGE_OPTIONS"] | {
            "connection_pool": client.connection_pool
        }
    return client


def redis_client() -> Client | None:
    return services().redis
