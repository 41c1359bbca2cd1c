"""Clients of the real servers: a recording Socket.IO client and the webhook."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests
import socketio

from tests.conftest import API_KEY
from tests.e2e import servers

CONNECT_TIMEOUT = 10.0
#: Every Listener connected during the running test; ``close_listeners`` closes those it left.
LIVE: list[Listener] = []


class Listener:
    """A ``socketio.Client`` that records every ``new_notification`` it receives.

    ``transport`` is one transport or a list (``["polling", "websocket"]`` starts with polling
    and upgrades, as browsers do); ``cookies`` go with every polling request and the websocket
    upgrade (python-engineio sends the session's cookies), as a balancer's sticky cookie does.
    """

    def __init__(
        self,
        url: str,
        token: str,
        last_id: int | None = None,
        transport: str | list[str] = "websocket",
        cookies: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        # Polling requests ask the server to close their connection: idle keep-alive
        # connections left behind would hold a stopping gunicorn worker.
        self.http = requests.Session()
        self.http.headers["Connection"] = "close"
        for name, value in (cookies or {}).items():
            self.http.cookies.set(name, value)
        self.client = socketio.Client(reconnection=False, http_session=self.http)
        self.received: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        self.client.on("new_notification", self._record)
        auth: dict[str, Any] = {"token": token}
        if last_id is not None:
            auth["lastId"] = last_id
        try:
            transports = [transport] if isinstance(transport, str) else transport
            self.client.connect(url, auth=auth, transports=transports, wait_timeout=CONNECT_TIMEOUT)
        except Exception:
            self.http.close()
            raise
        LIVE.append(self)

    def _record(self, notification: dict[str, Any]) -> None:
        with self.changed:
            self.received.append(notification)
            self.changed.notify_all()

    def ids(self) -> set[int]:
        with self.changed:
            return {notification["id"] for notification in self.received}

    def wait_for(self, ids: set[int] | list[int], timeout: float = 5.0) -> set[int]:
        """Wait until every id in ``ids`` was received; returns the ones still missing."""
        wanted = set(ids)
        end = time.monotonic() + timeout
        with self.changed:
            while True:
                missing = wanted - {notification["id"] for notification in self.received}
                remaining = end - time.monotonic()
                if not missing or remaining <= 0:
                    return missing
                self.changed.wait(remaining)

    @property
    def transport(self) -> str:
        """The transport in use now."""
        return str(self.client.transport())

    def call(self, event: str, payload: Any) -> Any:
        return self.client.call(event, payload, timeout=CONNECT_TIMEOUT)

    def disconnect(self) -> None:
        """Idempotent; the websocket's own socket is closed too when the server ended the
        session first (python-engineio leaves it to the garbage collector then)."""
        if self.client.connected:
            self.client.disconnect()
        ws = getattr(self.client.eio, "ws", None)
        if ws is not None:
            ws.shutdown()
        self.http.close()


def close_listeners() -> None:
    """Disconnect the Listeners a test left connected (a failed test's, or one whose server
    ended it), so that no client socket of one test is collected, unclosed, during another."""
    while LIVE:
        LIVE.pop().disconnect()


def webhook_at(
    url: str, body: Any, path: str = "/webhook/notify", timeout: float = 10
) -> requests.Response:
    """POST ``body`` to ``path`` at ``url`` with the test key, on a connection the server closes
    after answering: an idle keep-alive connection would hold a stopping gunicorn worker until
    its graceful timeout."""
    headers = {"X-API-Key": API_KEY, "Connection": "close"}
    return requests.post(f"{url}{path}", json=body, headers=headers, timeout=timeout)


def post_webhook(
    server: servers.Server, recipient: str, message: str = "hello", **fields: Any
) -> requests.Response:
    """POST /webhook/notify to ``server`` for ``recipient`` (:func:`webhook_at`)."""
    return webhook_at(server.url, {"recipientId": recipient, "message": message, **fields})


#: ``listen(server_or_url, user, ...)`` (the ``listen`` fixture).
Listen = Callable[..., Listener]
