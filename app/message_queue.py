"""The Redis message queue that makes every process's rooms one (Flask-SocketIO + pub/sub).

JSON on the wire, never pickle. ``health_check_interval`` makes the listener notice a dead
connection; python-socketio then reconnects with backoff.
"""

from __future__ import annotations

import time
from typing import Any

import socketio as python_socketio
from flask import Flask

from app.extensions import socketio
from app.patches.socketio import IndexedManager, IndexedRooms

SUBSCRIBE_WAIT_SECONDS = 5.0
#: Key of a published message that carries several emits (see ``BatchingRedisManager``).
BATCH = "notify_batch"


class BatchingRedisManager(IndexedRooms, python_socketio.RedisManager):  # type: ignore[misc]
    """python-socketio's Redis manager, plus ``emit_many``: many room emits, one PUBLISH.

    Each emit goes to this process's sockets at once, as ``emit`` does, and the other processes
    get all of them in one message (``method: emit`` with the list under ``BATCH``), instead of a
    Redis round trip per emit. Messages of the standard manager (a write-only emitter in another
    program) are handled as before.
    """

    def emit_many(self, event: str, items: list[tuple[Any, str]], namespace: str = "/") -> None:
        """Emit ``event`` with each ``(data, room)`` of ``items``, in order, on every process."""
        messages = [
            {"event": event, "data": [data], "namespace": namespace, "room": room}
            for data, room in items
        ]
        for message in messages:
            super()._handle_emit(message)
        if messages:
            # host_id first: the listener recognises its own batch by its first bytes.
            self._publish({"host_id": self.host_id, "method": "emit", BATCH: messages})

    def _listen(self) -> Any:
        """Every message but this process's own batches, which it already emitted.

        python-socketio parses each message before it looks at ``host_id``; for a batch of 1,000
        notifications that parse was a tenth of the sending process's work (bench/PROFILE.md).
        """
        own = self.json.dumps({"host_id": self.host_id})[:-1].encode() + b","
        for message in super()._listen():
            if not (isinstance(message, bytes) and message.startswith(own)):
                yield message

    def _handle_emit(self, message: dict[str, Any]) -> None:
        batch = message.get(BATCH)
        if isinstance(batch, list):
            for item in batch:
                if isinstance(item, dict):
                    super()._handle_emit(item)
            return
        super()._handle_emit(message)


def build(app: Flask) -> python_socketio.Manager:
    """The Redis message queue when REDIS_URL is set, else rooms in this process only."""
    url = app.config["REDIS_URL"]
    if not url or not app.config["MESSAGE_QUEUE"]:
        return IndexedManager()
    return BatchingRedisManager(
        url,
        channel=f"{app.config['REDIS_PREFIX']}:socketio",
        redis_options={
            "socket_connect_timeout": 5,
            "health_check_interval": 10,
            "socket_keepalive": True,
        },
    )


def listener_state() -> str:
    """``ok`` when this process's listener runs and is subscribed, ``disabled`` without Redis."""
    server = socketio.server
    manager = server.manager if server else None
    if not isinstance(manager, python_socketio.RedisManager):
        return "disabled"
    if not server.manager_initialized:
        return "error"
    thread = getattr(manager, "thread", None)
    alive = thread is not None and (
        not thread.dead if hasattr(thread, "dead") else thread.is_alive()
    )
    pubsub = manager.pubsub
    subscribed = pubsub is not None and pubsub.subscribed and pubsub.connection is not None
    return "ok" if alive and subscribed else "error"


def receiving() -> bool:
    """Whether emits published by other processes reach this process's sockets: the listener
    is subscribed, or there is no message queue (rooms are in-process)."""
    return listener_state() != "error"


def start() -> str:
    """Start the listener if it is not running yet, wait until subscribed; return its state.

    Started lazily, a socket could register as online before its process listens, and a push
    from another process in that gap would be recorded delivered yet never arrive. The serving
    entry point calls this before accepting connections; the health check calls it too.
    """
    server = socketio.server
    if server is None or not isinstance(server.manager, python_socketio.RedisManager):
        return "disabled"
    if not server.manager_initialized:
        server.manager_initialized = True
        server.manager.initialize()
    deadline = time.monotonic() + SUBSCRIBE_WAIT_SECONDS
    while listener_state() != "ok" and time.monotonic() < deadline:
        socketio.sleep(0.05)
    return listener_state()
