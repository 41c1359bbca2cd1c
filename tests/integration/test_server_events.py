"""Handlers on python-socketio's server (``app.sockets.dispatch``): registered by name, run with
the app context and the event current, answered by ack, errors in the contract's shape."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, current_app
from flask_socketio import SocketIOTestClient

from app.errors import ValidationError
from app.extensions import socketio
from app.registry import services
from app.sockets import dispatch
from app.sockets.context import current_event
from app.sockets.sessions import current_user

pytestmark = pytest.mark.integration


@pytest.fixture
def probe_event() -> Iterator[str]:
    name = "probe_event"

    @dispatch.server_event(name)
    def probe(*args: Any) -> dict[str, Any]:
        event = current_event()
        assert event is not None
        if args and args[0] == "fail":
            raise ValidationError({"x": "bad"}, "The probe is not valid.")
        return {
            "success": True,
            "user": current_user(),
            "sid": event.sid,
            "name": event.name,
            "app": current_app.name,
        }

    yield name
    dispatch.HANDLERS.pop(name, None)
    socketio.server.handlers["/"].pop(name, None)


def test_a_registered_event_is_answered_by_ack_with_the_sockets_user(
    connect: Callable[..., SocketIOTestClient], probe_event: str
) -> None:
    client = connect("alice")
    ack = client.emit(probe_event, "hello", callback=True)
    assert ack["success"] is True and ack["user"] == "alice" and ack["name"] == probe_event
    assert ack["sid"] and ack["app"]
    failed = client.emit(probe_event, "fail", callback=True)
    assert failed["success"] is False and failed["code"] == "validation_error"


def test_a_handler_registered_before_init_app_is_installed_by_it(app: Flask) -> None:
    assert {"send_notification", "mark_read"} <= dispatch.HANDLERS.keys()
    for name in ("send_notification", "mark_read"):
        assert socketio.server.handlers["/"][name].__name__ == f"dispatch_{name}"


def test_a_server_event_skips_python_socketios_handler_lookup(
    connect: Callable[..., SocketIOTestClient], probe_event: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dispatched straight to its dispatcher (app.patches.event_dispatch), answered the same."""
    client = connect("alice")
    triggered: list[str] = []
    trigger = socketio.server._trigger_event
    monkeypatch.setattr(
        socketio.server,
        "_trigger_event",
        lambda event, *a: triggered.append(event) or trigger(event, *a),
    )
    ack = client.emit(probe_event, "hello", callback=True)
    assert ack["success"] is True and ack["user"] == "alice"
    assert triggered == []


class CountingUsers(dict[str, str]):
    reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        CountingUsers.reads += 1
        return super().get(key, default)


def test_the_sockets_user_is_looked_up_once_per_event(
    app: Flask, connect: Callable[..., SocketIOTestClient], probe_event: str
) -> None:
    """The dispatcher reads it for the whole event (the log line, the limit, the handler)."""
    client = connect("alice")
    state = services(app)
    state.socket_users = CountingUsers(state.socket_users)
    CountingUsers.reads = 0
    ack = client.emit("send_notification", {"recipientId": "bob", "message": "hi"}, callback=True)
    assert ack["success"] is True
    assert CountingUsers.reads == 1
    ack = client.emit(probe_event, "hello", callback=True)
    assert ack["user"] == "alice" and CountingUsers.reads == 2
