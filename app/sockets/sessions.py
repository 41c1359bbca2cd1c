"""Which user each socket of this process belongs to (set at connect, dropped at disconnect)."""

from __future__ import annotations

from app.errors import Unauthorized
from app.sockets.context import current_event

_users: dict[str, str] = {}


def bind(sid: str, user_id: str) -> None:
    _users[sid] = user_id


def release(sid: str) -> str | None:
    return _users.pop(sid, None)


def count() -> int:
    """Sockets of this process with a user."""
    return len(_users)


def current_user() -> str:
    """The user of the socket handling the current event."""
    event = current_event()
    user = _users.get(event.sid) if event is not None else None
    if user is None:
        raise Unauthorized(message="This socket is not authenticated.")
    return user
