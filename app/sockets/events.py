"""Client events: thin adapters from Socket.IO payloads to the service layer, answered by ack.

They run on python-socketio's server with an app context only (``app.sockets.dispatch``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.errors import ApiError, ErrorBody, unexpected_error_body
from app.extensions import socketio
from app.observability.logging import logged_event
from app.services import inbox, sending
from app.services.rate_limits import socket_limits
from app.sockets import lifecycle
from app.sockets.context import current_event
from app.sockets.dispatch import server_event
from app.sockets.sessions import current_user


@contextmanager
def counted_event() -> Iterator[str]:
    """The socket's user, once the per-user event limit admits one more event; the event
    counts as in flight (for a clean shutdown) until the block ends."""
    user = current_user()
    with lifecycle.client_event():
        socket_limits().check_event(user)
        yield user


@server_event("send_notification")
@logged_event
def on_send_notification(*args: Any) -> dict[str, Any]:
    """Ack ``{success, notification}``; the sender is the socket's user."""
    with counted_event() as user:
        notification = sending.submit(args[0] if args else None, sender_id=user)
    return {"success": True, "notification": notification}


@server_event("mark_read")
@logged_event
def on_mark_read(*args: Any) -> dict[str, Any]:
    """Ack ``{success, updated}``; the user's other sockets get ``notification_read``."""
    with counted_event() as user:
        event = current_event()
        skip_sid = event.sid if event is not None else None
        updated = inbox.mark_read(user, args[0] if args else None, skip_sid=skip_sid)
    return {"success": True, "updated": updated}


@socketio.on_error_default
def on_error(error: Exception) -> ErrorBody:
    """The ack for a failed event: an ApiError's own body, anything else a logged 500."""
    if isinstance(error, ApiError):
        return error.body()
    return unexpected_error_body(error)
