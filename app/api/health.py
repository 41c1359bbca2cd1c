"""``GET /health``: is this process able to store and share notifications right now?"""

from __future__ import annotations

import logging
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import sqlalchemy as sa
from flask import Blueprint

from app import message_queue
from app.extensions import db
from app.redis_client import redis_client

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)
STARTED = time.monotonic()

try:
    VERSION = version("notify-server")
except PackageNotFoundError:  # running from a checkout that was not installed
    VERSION = "0.0.0"


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
    client = redis_client()
    if client is None:
        return "disabled"
    try:
        client.ping()
    except Exception as error:
        log.warning("health: Redis check failed: %s", type(error).__name__)
        return "error"
    return "ok"


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
