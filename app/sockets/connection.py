"""Connect and disconnect: authenticate the handshake, join the user's room, log, replay."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import request
from flask_socketio import ConnectionRefusedError, join_room

from app.errors import ServiceUnavailable
from app.extensions import socketio
from app.models import ConnectionEvent
from app.observability import metrics
from app.observability.logging import logged_event
from app.payloads.rules import MAX_ID, whole_number
from app.security.tokens import Claims, TokenRefused, verify
from app.services import replay
from app.services.connection_logs import connection_logs
from app.services.delivery import hold_pushes, user_room
from app.services.presence import presence
from app.services.rate_limits import handshake_retry_after
from app.sockets import lifecycle, sessions
from app.sockets.live import live_sessions

log = logging.getLogger(__name__)


def last_id_of(auth: object) -> int | None:
    """``auth.lastId`` as an id, 0 or more (a string of digits too, spaces around allowed),
    else None: a bad one is no ``lastId`` (the replay is then of every pending one)."""
    value = auth.get("lastId") if isinstance(auth, dict) else None
    if isinstance(value, str):
        value = value.strip()
    return whole_number(value, 0, MAX_ID, digits=True)


def authenticate_handshake(auth: object) -> Claims:
    """The socket's token, or ConnectionRefusedError in the contract's shape."""
    retry_after = handshake_retry_after(request.environ)
    if retry_after is not None:
        metrics.rate_limited("socket_connect")
        raise ConnectionRefusedError(
            "rate_limited", {"code": "rate_limited", "retryAfter": retry_after}
        )
    token = auth.get("token") if isinstance(auth, dict) else None
    try:
        return verify(token)
    except TokenRefused as refused:
        metrics.auth_refused(refused.problem.value)
        raise ConnectionRefusedError("unauthorized", {"code": refused.problem.value}) from None
    except ServiceUnavailable:  # revocations unknown: refused rather than let through
        raise ConnectionRefusedError(
            "service_unavailable", {"code": "service_unavailable"}
        ) from None


def handshake_only(handler: Callable[..., None]) -> Callable[..., None]:
    """Run ``handler`` for the socket's own handshake only.

    python-socketio hands a client *event* named ``connect`` to the connect handler too
    (Flask-SocketIO then passes the event's second argument as ``auth``): a connected socket
    could re-run its handshake, with another token. A real handshake comes with the session's
    own WSGI environ as first argument, which a client cannot send.
    """

    @functools.wraps(handler)
    def wrapper(*args: Any) -> None:
        event_args = request.event["args"]  # type: ignore[attr-defined]
        if not event_args or event_args[0] is not request.environ:
            log.warning("ignored a client event named connect")
            return None
        return handler(*args)

    return wrapper


def disconnect_only(handler: Callable[..., None]) -> Callable[..., None]:
    """Run ``handler`` for the socket's real disconnect only, not for a client event named
    ``disconnect`` (python-socketio dispatches both to it): during a real one python-socketio
    no longer counts the socket as connected."""

    @functools.wraps(handler)
    def wrapper(*args: Any) -> None:
        if socketio.server.manager.is_connected(request.sid, "/"):  # type: ignore[attr-defined]
            log.warning("ignored a client event named disconnect")
            return None
        return handler(*args)

    return wrapper


@socketio.on("connect")
@handshake_only
@logged_event
def on_connect(auth: object = None) -> None:
    """Accept an authenticated socket, or refuse it; never accept one half set up.

    Flask-SocketIO would turn any other exception into an error handler's return value, which
    python-socketio takes as "accepted": a socket with no user. So a failure is a refusal here.
    """
    try:
        open_session(auth)
    except ConnectionRefusedError:
        raise
    except Exception:
        log.exception("connect failed")
        undo_session(request.sid)  # type: ignore[attr-defined]
        raise ConnectionRefusedError("internal_error", {"code": "internal_error"}) from None


def undo_session(sid: str) -> str | None:
    """Forget a socket being refused: no user bound to it, not online; returns its user."""
    live_sessions().untrack(sid)
    user = sessions.release(sid)
    if user is not None:
        presence().remove(user, sid)
    return user


def open_session(auth: object) -> None:
    """Steps in the contract's order; see ``sending.submit`` for why none is lost.

    Join the room first, so that any push from now on reaches this socket; then register as
    online, so senders from now on push instead of leaving rows pending; only then read what is
    pending (or newer than ``lastId``), which covers every row committed before registration.
    Live pushes are held from the join until ``replay_complete`` is sent, so they follow it.

    The token's deadlines are tracked as the room is joined, with no I/O since the revocation
    check: a revocation that arrives later finds this socket (``app.sockets.live``).
    """
    claims = authenticate_handshake(auth)
    user = claims.user
    sid: str = request.sid  # type: ignore[attr-defined]
    hold_pushes(sid)  # until the replay is complete: its ids first, oldest first
    join_room(user_room(user))
    live_sessions().track(sid, claims)
    sessions.bind(sid, user)
    presence().add(user, sid)
    lifecycle.start_heartbeat()
    log_connection(user, sid, ConnectionEvent.CONNECT)
    try:
        replay.replay(user, last_id_of(auth), sid)
    except ServiceUnavailable:
        # Accepted without its replay, the client would take newer live pushes as "seen up to
        # here" and its next lastId would skip what it missed: refused, it tries again later.
        log.warning("connect of %s refused: database unavailable, nothing replayed", user)
        undo_session(sid)
        log_connection(user, sid, ConnectionEvent.DISCONNECT)
        raise ConnectionRefusedError(
            "service_unavailable", {"code": "service_unavailable"}
        ) from None


@socketio.on("disconnect")
@disconnect_only
@logged_event
def on_disconnect(*_reason: object) -> None:
    sid: str = request.sid  # type: ignore[attr-defined]
    live_sessions().untrack(sid)
    user = sessions.release(sid)
    if user is None:
        return
    presence().remove(user, sid)
    log_connection(user, sid, ConnectionEvent.DISCONNECT)


def log_connection(user: str, sid: str, event: ConnectionEvent) -> None:
    """A ``connection_logs`` row for this socket (written in the background)."""
    connection_logs().record(
        user, sid, event, request.remote_addr, request.headers.get("User-Agent")
    )
