"""Client events: thin adapters from Socket.IO payloads to the service layer, answered by ack.

They run on python-socketio's server with an app context only (``app.sockets.dispatch``).
"""

from __future__ import annotations

from typing import Any

from app.errors import ApiError, ErrorBody, unexpected_error_body
from app.extensions import socketio
from app.observability.logging import logged_event
from app.registry import ClientEvents
from app.services import inbox, sending
from app.services.rate_limits import socket_limits_of
from app.sockets import lifecycle
from app.sockets.context import current_event
from app.sockets.dispatch import server_event
from app.sockets.sessions import current_user


def admitted() -> tuple[str, ClientEvents]:
    """The socket's user, once the per-user event limit admits one more event; the event
    counts as in flight (for a clean shutdown) until ``end_client_event`` (the handler's
    ``finally``). Plain calls, not context managers: this runs for every client event."""
    user = current_user()
    event = current_event()
    app = event.environ.get("flask.app") if event is not None else None
    events = lifecycle.begin_client_event(app)
    try:
        socket_limits_of(app).check_event(user)
    except BaseException:
        lifecycle.end_client_event(events)
        raise
    return user, events


@server_event("send_notification")
@logged_event
def on_send_notification(*args: Any) -> dict[str, Any]:
    """Ack ``{success, notification}``; the sender is the socket's user."""
    user, events = admitted()
    try:
        notification = sending.submit(args[0] if args else None, sender_id=user)
    finally:
        lifecycle.end_client_event(events)
    return {"success": True, "notification": notification}


@server_event("mark_read")
@logged_event
def on_mark_read(*args: Any) -> dict[str, Any]:
    """Ack ``{success, updated}``; the user's other sockets get ``notification_read``."""
    user, events = admitted()
    try:
        event = current_event()
        skip_sid = event.sid if event is not None else None
        updated = inbox.mark_read(user, args[0] if args else None, skip_sid=skip_sid)
    finally:
        lifecycle.end_client_event(events)
    return {"success": True, "updated": updated}


@socketio.on_error_default
def on_error(error: Exception) -> ErrorBody:
    """The ack for a failed event: an ApiError's own body, anything else a logged 500."""
    if isinstance(error, ApiError):
        return error.body()
    return unexpected_error_body(error)
