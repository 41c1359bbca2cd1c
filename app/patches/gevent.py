"""gevent (pywsgi) and gevent-websocket overrides: timeouts on stalled clients, JSON refusals,
a smaller read buffer.

gevent's pywsgi waits for ever for a request line, headers or a body that never come, so a
client that opens connections and sends nothing (slowloris) holds a greenlet and a file
descriptor per connection for ever. ``TimeoutHandler`` gives a plain HTTP connection
``CLIENT_TIMEOUT`` seconds (default 10) for each read and write, and as much to start its next
keep-alive request. A websocket, once upgraded, gets ``PING_INTERVAL + PING_TIMEOUT + 5``
seconds instead: a live client answers Engine.IO's pings well within it, and a client that
stopped reading frees its connection, and what was queued for it.

Requests refused before the application sees them (a malformed or too large request line or
header) are answered in the contract's JSON error shape: pywsgi's private
``WSGIHandler._handle_client_error`` answers them with an empty body, and tells them apart from
a plain socket error by its private ``_InvalidClientInput``.

The read buffer is 2 KiB instead of io's 8 KiB (larger reads, a big body, bypass it).
"""

from __future__ import annotations

import json
from typing import Any

from gevent.pywsgi import _InvalidClientInput
from geventwebsocket.handler import WebSocketHandler

from app.patches.fence import fence
from config.serving import serving_settings

fence(
    "gevent.pywsgi.WSGIHandler._handle_client_error",
    "a3fbde482b69b9fd10fe37b4c65a39e1e195d1f067ca351298104f6a092dd3dd",
    "replaced: JSON refusal bodies, a silent close on a timeout",
)
fence(
    "gevent.pywsgi._InvalidClientInput",
    "9ee87093a93977b45001ff609cc7bee39a73b04b900ac935b2cff26b30f21e3a",
    "relied on: tells a malformed request from a socket error",
)
fence(
    "gevent.pywsgi.WSGIHandler.read_requestline",
    "72173107a177f9b3a97c61a8b7ff8875fbc4f6664970d349d08b52af2716e985",
    "wrapped: each request starts the client timeout",
)
fence(
    "gevent.pywsgi.WSGIHandler.start_response",
    "4b6599df51bcbc09c1f550f0a0117093176e10dc40b582f2412b3ce2b326abbd",
    "wrapped: a request that asked to close gets Connection: close in its answer",
)
fence(
    "geventwebsocket.handler.WebSocketHandler.upgrade_websocket",
    "01f7ee962132a1febf42a0b8b0c44724dff54a9c2b47a388bb22d52a173d6788",
    "wrapped: an upgraded socket gets the ping window as its timeout",
)


SETTINGS = serving_settings()
CLIENT_TIMEOUT = SETTINGS.CLIENT_TIMEOUT
WEBSOCKET_TIMEOUT = SETTINGS.websocket_timeout
#: Bytes of each connection's read buffer.
READ_BUFFER = 2048


def _refusal(status: str, message: str) -> bytes:
    body = json.dumps({"success": False, "error": message, "code": "validation_error"}).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


BAD_REQUEST = _refusal("400 Bad Request", "The request line or headers are malformed or too large.")
URI_TOO_LONG = _refusal("414 URI Too Long", "The request line is too long.")


class TimeoutHandler(WebSocketHandler):  # type: ignore[misc]
    def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None) -> None:
        super().__init__(sock, address, server, rfile or sock.makefile("rb", READ_BUFFER))

    def read_requestline(self) -> Any:
        """Each request (the first, or the next on a keep-alive connection) starts the clock."""
        self.socket.settimeout(CLIENT_TIMEOUT)
        return super().read_requestline()

    def upgrade_websocket(self) -> Any:
        result = super().upgrade_websocket()
        if self.environ.get("wsgi.websocket") is not None:
            self.socket.settimeout(WEBSOCKET_TIMEOUT)
        return result

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        """Say ``Connection: close`` when the connection will close after this answer.

        pywsgi closes an HTTP/1.1 connection whose request said ``Connection: close`` but does
        not say so in the answer (RFC 9112 9.6: the server SHOULD). A client that pools
        connections (Python's requests/urllib3) then keeps it as reusable, sends its next
        request on it as the server closes it, and gets "Remote end closed connection without
        response": a long-polling GET lost that way broke a handshake now and then.
        """
        if self.close_connection and not any(name.lower() == "connection" for name, _ in headers):
            headers = [*headers, ("Connection", "close")]
        return super().start_response(status, headers, exc_info)

    def handle_one_request(self) -> Any:
        result = super().handle_one_request()
        if isinstance(result, tuple) and result[0] == "414":
            return ("414", URI_TOO_LONG)
        return result

    def _handle_client_error(self, ex: BaseException) -> tuple[str, bytes]:
        if isinstance(ex, OSError) and not isinstance(ex, _InvalidClientInput):
            # Silence past CLIENT_TIMEOUT, or a reset, while reading the headers: just close.
            return ("408", b"")
        self.log_error("Invalid request (from %s): %s", self.client_address, type(ex).__name__)
        return ("400", BAD_REQUEST)
