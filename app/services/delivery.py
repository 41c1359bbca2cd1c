"""Pushing to users' sockets through Flask-SocketIO, from any process.

With the Redis message queue a push goes only to the processes that hold a socket of its
recipient, as presence says (``app.patches.socketio_redis.RoutedRedisManager.emit_routed``);
without one, rooms are this process's and ``socketio.emit`` is all there is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from app.extensions import socketio
from app.models import NotificationDict, Status, iso
from app.patches.socketio import Emit, IndexedRooms
from app.patches.socketio_redis import Routed, RoutedRedisManager
from app.services.presence import presence

NEW_NOTIFICATION = "new_notification"
NOTIFICATION_READ = "notification_read"
REPLAY_COMPLETE = "replay_complete"


def user_room(user_id: str) -> str:
    """The only place a room name is made: clients never choose rooms."""
    return f"user:{user_id}"


def _manager() -> RoutedRedisManager | None:
    manager = socketio.server.manager if socketio.server else None
    return manager if isinstance(manager, RoutedRedisManager) else None


def mark_delivered(notifications: Sequence[NotificationDict], now: datetime) -> None:
    """Show notifications about to be pushed as ``delivered`` at ``now``: the push carries the
    status its row gets once recorded (``storage.record_delivered``)."""
    delivered_at = iso(now)
    for notification in notifications:
        notification["status"] = Status.DELIVERED.value
        notification["deliveredAt"] = delivered_at


def push(
    notifications: Sequence[NotificationDict], where: Mapping[str, frozenset[str]]
) -> list[bool]:
    """Emit each notification to every socket of its recipient, in order, on the processes
    ``where`` names for the recipient (``presence().locate``); for each, whether every one of
    those processes had a listener for it (False: leave it pending).

    With the Redis message queue each other process gets its share in one PUBLISH.
    """
    manager = _manager()
    if manager is None:
        local = socketio.server.manager if socketio.server else None
        emits = [Emit(n, user_room(n["recipientId"])) for n in notifications]
        if isinstance(local, IndexedRooms):
            local.emit_each(NEW_NOTIFICATION, emits)
        else:
            for emit in emits:
                socketio.emit(NEW_NOTIFICATION, emit.data, to=emit.room)
        return [True for _ in notifications]
    items = [
        Routed(n, user_room(n["recipientId"]), where.get(n["recipientId"], frozenset()))
        for n in notifications
    ]
    return manager.emit_routed(NEW_NOTIFICATION, items)


def push_to_socket(sid: str, notifications: Sequence[NotificationDict]) -> None:
    """Emit notifications to one socket of this process (replay on connect), in order: never
    through Redis, the socket is here."""
    for notification in notifications:
        socketio.emit(NEW_NOTIFICATION, notification, to=sid, ignore_queue=True)


def _rooms() -> IndexedRooms:
    """This process's manager (``app.message_queue`` makes every one an ``IndexedRooms``)."""
    manager = socketio.server.manager
    if not isinstance(manager, IndexedRooms):
        raise RuntimeError("the Socket.IO manager is not an IndexedRooms")
    return manager


def hold_pushes(sid: str) -> None:
    """Hold live pushes to a connecting socket of this process until its replay is complete
    (``complete_replay`` sends them after ``replay_complete``), so that it sees the replay's
    ids, oldest first, before any newer live one. A refused socket's hold goes with it
    (``IndexedRooms.basic_disconnect``)."""
    _rooms().hold_pushes(sid)


def complete_replay(sid: str, payload: Mapping[str, Any]) -> None:
    """Tell one socket of this process its replay is over, right after its handshake is
    answered (the connect handler calls this; the CONNECT is sent when it returns), then send
    the live pushes held for it meanwhile (``hold_pushes``). Not published: no other process
    holds the socket."""
    rooms = _rooms()
    data = dict(payload)

    def complete() -> None:
        socketio.emit(REPLAY_COMPLETE, data, to=sid, ignore_queue=True)
        rooms.release_pushes(sid)

    rooms.when_connected(sid, complete)


def announce_read(user_id: str, payload: dict[str, Any], skip_sid: str | None = None) -> None:
    """Tell the user's other sockets, wherever presence finds them, that notifications were
    read elsewhere (a socket that connects later reads the state from the inbox)."""
    manager = _manager()
    room = user_room(user_id)
    if manager is None:
        socketio.emit(NOTIFICATION_READ, payload, to=room, skip_sid=skip_sid)
        return
    where = presence().locate([user_id]).get(user_id, frozenset())
    if where:
        manager.emit_routed(NOTIFICATION_READ, [Routed(payload, room, where, skip_sid)])
