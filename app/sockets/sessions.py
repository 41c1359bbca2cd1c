"""Which user each socket of this process belongs to (set at connect, dropped at disconnect).

The map is ``registry.Services.socket_users``. Socket handlers find their app in the socket's
environ (``flask.app``, set at the handshake): a dictionary look-up, where ``current_app`` would
resolve a context proxy on every event.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app

from app.errors import Unauthorized
from app.registry import services
from app.sockets.context import current_event


def _users(app: Flask | None = None) -> dict[str, str]:
    return services(app).socket_users


#: Called after a socket's user is bound or released: the serving process's GC check
#: (``app.gc_policy.GcManager.poke``, set by ``wsgi.py``), which sleeps while the count stays.
on_change: Callable[[], None] | None = None


def bind(sid: str, user_id: str) -> None:
    _users()[sid] = user_id
    if on_change is not None:
        on_change()


def release(sid: str) -> str | None:
    user = _users().pop(sid, None)
    if on_change is not None:
        on_change()
    return user


def count(app: Flask | None = None) -> int:
    """Sockets of this process with a user."""
    return len(_users(app))


def current_user() -> str:
    """The user of the socket handling the current event."""
    event = current_event()
    user = None
    if event is not None and event.user is not None:
        return event.user
    if event is not None:
        app: Flask = event.environ.get("flask.app") or current_app._get_current_object()  # type: ignore[attr-defined]
        user = _users(app).get(event.sid)
    if user is None:
        raise Unauthorized(message="This socket is not authenticated.")
    return user
