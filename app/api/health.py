"""``GET /health``: is this process able to store and share notifications right now?"""

from __future__ import annotations

import logging
import time
from typing import Any

import sqlalchemy as sa
from flask import Blueprint
from redis.cluster import RedisCluster
from redis.exceptions import RedisError

from app import message_queue
from app.extensions import db
from app.redis_client import redis_client
from app.version import VERSION

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)
STARTED = time.monotonic()


def check_database() -> str:
    try:
        db.session.execute(sa.text("SELECT 1"))
        db.session.rollback()
    except Exception as error:  # any failure means "not usable"; the log keeps the reason
        log.warning("health: database check failed: %s", type(error).__name__)
        db.session.rollback()
        return "error"
    return "ok"


def check_redis() -> str:
    """PING; on a Redis Cluster, PING to every master and ``cluster_state:ok``: a dead master
    is an outage of its slots until its replica takes over (then the client's map of the
    cluster is refreshed and the check passes again by itself)."""
    client = redis_client()
    if client is None:
        return "disabled"
    try:
        if isinstance(client, RedisCluster):
            check_cluster(client)
        else:
            client.ping()
    except Exception as error:
        log.warning("health: Redis check failed: %s", type(error).__name__)
        return "error"
    return "ok"


def check_cluster(cluster: RedisCluster) -> None:
    client: Any = cluster  # redis-py's cluster client is untyped
    try:
        for node in client.get_primaries():
            client.get_redis_connection(node).ping()
        state = client.cluster_info().get("cluster_state")
        if state != "ok":
            raise RedisError(f"cluster_state {state}")
    except Exception:
        try:
            client.nodes_manager.initialize()  # learn who took over, for the next check
        except Exception:  # noqa: BLE001 - still down: the next check tries again
            log.debug("health: refreshing the cluster's map failed", exc_info=True)
        raise


@bp.get("/health")
def health() -> tuple[dict[str, Any], int]:
    """Called by load balancers and monitors: 200 when every part works, else 503 naming it."""
    parts = {
        "database": check_database(),
        "redis": check_redis(),
        "messageQueue": message_queue.start(),
    }
    failing = [name for name, state in parts.items() if state == "error"]
    body: dict[str, Any] = {
        "status": "error" if failing else "ok",
        **parts,
        "version": VERSION,
        "uptimeSeconds": round(time.monotonic() - STARTED, 1),
    }
    if failing:
        body["error"] = "unavailable: " + ", ".join(failing)
    return body, 503 if failing else 200
