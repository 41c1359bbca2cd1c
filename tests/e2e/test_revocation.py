"""Revocations honoured by processes that did not hear of them: one that was down when the
revocation was made, and one whose Redis channel is another (as if the message were lost)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt as pyjwt
import pytest
import socketio

from app.services.revocations import REFRESH_SECONDS
from tests.conftest import JWT_SECRET
from tests.e2e import servers
from tests.e2e.clients import Listener, webhook_at

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]


def old_token(user: str) -> str:
    issued = int(time.time()) - 60
    return pyjwt.encode({"sub": user, "iat": issued, "exp": issued + 3600}, JWT_SECRET)


def revoke(server: servers.Server, user: str) -> dict[str, Any]:
    before = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    response = webhook_at(server.url, {"userId": user, "before": before}, "/webhook/revoke")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refusal(server: servers.Server, token: str) -> Any:
    """The ``connect_error`` data of a handshake that must be refused."""
    client = socketio.Client(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(server.url, auth={"token": token}, transports=["websocket"], wait_timeout=5)
    client.disconnect()
    return errors[0]


def test_a_process_started_after_a_revocation_refuses_the_token_from_its_start(
    start_server: Callable[..., servers.Server],
) -> None:
    first = start_server()
    token = old_token("alice")
    assert revoke(first, "alice") == {"success": True, "disconnected": 0}
    later = start_server()  # was not running: it learns it from the database
    assert refusal(later, token) == {"message": "unauthorized", "data": {"code": "token_revoked"}}


def test_a_process_that_missed_the_message_ends_the_socket_within_the_refresh(
    start_server: Callable[..., servers.Server], prefix: str
) -> None:
    deaf = start_server(REDIS_PREFIX=f"{prefix}-elsewhere")  # hears nothing from the other
    hearing = start_server()
    socket = Listener(deaf.url, old_token("alice"))
    ended: list[Any] = []
    socket.client.on("session_ended", ended.append)
    try:
        made = time.monotonic()
        assert revoke(hearing, "alice") == {"success": True, "disconnected": 0}
        while socket.client.connected:
            assert time.monotonic() - made < REFRESH_SECONDS + 1.5, "never ended"
            time.sleep(0.05)
        assert ended == [{"code": "token_revoked"}]
    finally:
        socket.disconnect()
