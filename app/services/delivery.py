"""Pushing to users' sockets through Flask-SocketIO, from any process.

With a message queue configured, ``socketio.emit`` publishes to Redis and every process emits to
its own members of the room, so the caller never needs to know where the recipient is connected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.extensions import socketio
from app.message_queue import BatchingRedisManager
from app.models import NotificationDict

NEW_NOTIFICATION = "new_notification"
NOTIFICATION_READ = "notification_read"
REPLAY_COMPLETE = "replay_complete"


def user_room(user_id: str) -> str:
    """The only place a room name is made: clients never choose rooms."""
    return f"user:{user_id}"


def push(notifications: Iterable[NotificationDict]) -> None:
    """Emit each notification to every socket of its recipient, on every process, in order.

    With the Redis message queue all of them reach the other processes in one PUBLISH.
    """
    items = [(n, user_room(n["recipientId"])) for n in notifications]
    manager = socketio.server.manager if socketio.server else None
    if isinstance(manager, BatchingRedisManager):
        manager.emit_many(NEW_NOTIFICATION, items)
        return
    for notification, room in items:
        socketio.emit(NEW_NOTIFICATION, notification, to=room)


def push_to_socket(sid: str, notifications: Iterable[NotificationDict]) -> None:
    """Emit notifications to one socket (replay on connect), in order."""
    for notification in notifications:
        socketio.emit(NEW_NOTIFICATION, notification, to=sid)


def complete_replay(sid: str, payload: Mapping[str, Any]) -> None:
    """Tell one socket of this process its replay is over, once its handshake is answered.

    Called from the connect handler, whose emits python-socketio queues before the CONNECT
    packet (sent when the handler returns): the JS client buffers such events, but a client
    reading packets in order would see an event before its CONNECT. So this one waits for the
    CONNECT (it still follows the replayed notifications, queued earlier). Not published: no
    other process holds the socket.
    """
    data = dict(payload)
    socketio.start_background_task(_emit_once_connected, sid, REPLAY_COMPLETE, data)


#: How long an emit waits for its socket's handshake to be answered (10 ms steps).
CONNECT_WAIT_STEPS = 500


def _emit_once_connected(sid: str, event: str, data: dict[str, Any]) -> None:
    manager = socketio.server.manager
    for _ in range(CONNECT_WAIT_STEPS):
        if manager.is_connected(sid, "/"):
            socketio.emit(event, data, to=sid, ignore_queue=True)
            return
        if not manager.is_pre_connected(sid, "/"):
            return  # refused, or gone
        socketio.sleep(0.01)


def announce_read(user_id: str, payload: dict[str, Any], skip_sid: str | None = None) -> None:
    """Tell the user's other sockets that notifications were read elsewhere."""
    socketio.emit(NOTIFICATION_READ, payload, to=user_room(user_id), skip_sid=skip_sid)
