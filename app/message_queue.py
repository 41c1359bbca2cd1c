"""The Redis message queue that makes every process's rooms one (Flask-SocketIO + pub/sub).

JSON on the wire, never pickle. Pushes of notifications are routed to the processes that hold
their recipient (``app.patches.socketio_redis``); everything else, and every message of another
program's write-only emitter, goes through the broadcast channel ``<REDIS_PREFIX>:socketio``.
"""

from __future__ import annotations

import os
import time
import uuid

import socketio as python_socketio
from flask import Flask

from app.extensions import socketio
from app.patches.socketio import IndexedManager
from app.patches.socketio_redis import BATCH, ROUTED_MARK, RoutedRedisManager
from app.registry import services

__all__ = [
    "BATCH",
    "RoutedRedisManager",
    "build",
    "listener_state",
    "new_process_id",
    "process_id",
    "start",
]

SUBSCRIBE_WAIT_SECONDS = 5.0


def new_process_id(app: Flask) -> str:
    """This process's id in presence entries and in the name of its channel; made once per app
    (``registry.Services.process_id``).

    ``r-`` says the process listens on its own channel (``socketio_redis.is_routed``).
    """
    routed = app.config["ROUTED_DELIVERY"] and app.config["MESSAGE_QUEUE"]
    return f"{ROUTED_MARK if routed else ''}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def process_id(app: Flask) -> str:
    return services(app).process_id


def build(app: Flask) -> python_socketio.Manager:
    """The Redis message queue when REDIS_URL is set, else rooms in this process only."""
    url = app.config["REDIS_URL"]
    if not url or not app.config["MESSAGE_QUEUE"]:
        return IndexedManager()
    return RoutedRedisManager(
        url,
        channel=f"{app.config['REDIS_PREFIX']}:socketio",
        process_id=process_id(app),
        routed=app.config["ROUTED_DELIVERY"],
        redis_options={
            "socket_connect_timeout": 5,
            "health_check_interval": 10,
            "socket_keepalive": True,
        },
    )


def listener_state() -> str:
    """``ok`` when this process's listener runs and the server confirmed its subscriptions,
    ``disabled`` without Redis."""
    server = socketio.server
    manager = server.manager if server else None
    if not isinstance(manager, RoutedRedisManager):
        return "disabled"
    if not server.manager_initialized:
        return "error"
    thread = getattr(manager, "thread", None)
    alive = thread is not None and (
        not thread.dead if hasattr(thread, "dead") else thread.is_alive()
    )
    return "ok" if alive and manager.listening else "error"


def receiving() -> bool:
    """Whether emits published by other processes reach this process's sockets: the listener
    is subscribed, or there is no message queue (rooms are in-process)."""
    return listener_state() != "error"


def start() -> str:
    """Start the listener if it is not running yet and wait until subscribed; return its state.

    Started lazily, a socket could register as online before its process listens, and a push
    from another process in that gap would be recorded delivered yet never arrive. The serving
    entry point calls this before accepting connections; the health check calls it too.
    """
    server = socketio.server
    if server is None or not isinstance(server.manager, RoutedRedisManager):
        return "disabled"
    if server.manager_initialized:
        return listener_state()  # a running listener reconnects by itself; no waiting here
    server.manager_initialized = True
    server.manager.initialize()
    deadline = time.monotonic() + SUBSCRIBE_WAIT_SECONDS
    while listener_state() != "ok" and time.monotonic() < deadline:
        socketio.sleep(0.05)
    return listener_state()
