"""The Socket.IO event being handled: its socket, name and the handshake's WSGI environ.

Handlers dispatched from python-socketio's server (``app.sockets.dispatch``) run with an app
context only, no Flask request; Flask-SocketIO's (connect, disconnect) run in a request context
made from the same environ. ``current_event`` answers for both, so the code under them (the
session's user, the log line, metrics) does not care which one called it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from flask import has_request_context, request


@dataclass(slots=True, frozen=True)
class SocketEvent:
    sid: str
    name: str
    environ: dict[str, Any]
    #: The socket's user when the event came in (``app.sockets.dispatch`` looks it up once for
    #: the whole event); None: look it up (``sessions.current_user``).
    user: str | None = None

    @property
    def remote_addr(self) -> str | None:
        """The client's address as Flask's ``request.remote_addr`` gives it (after ProxyFix)."""
        address: str | None = self.environ.get("REMOTE_ADDR")
        return address


#: Set by the dispatcher for the greenlet (each event runs in its own) handling an event.
_current: ContextVar[SocketEvent | None] = ContextVar("notify_socket_event", default=None)


def current_event() -> SocketEvent | None:
    """The event being handled here, or None outside Socket.IO events."""
    event = _current.get()
    if event is not None:
        return event
    if has_request_context() and getattr(request, "sid", None) is not None:
        given = getattr(request, "event", None)
        name = given.get("message") if isinstance(given, dict) else None
        return SocketEvent(request.sid, str(name), request.environ)  # type: ignore[attr-defined]
    return None


def enter(event: SocketEvent) -> Any:
    """Make ``event`` current; returns the token for ``leave``."""
    return _current.set(event)


def leave(token: Any) -> None:
    _current.reset(token)
