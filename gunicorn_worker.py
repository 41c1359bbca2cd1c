"""The gunicorn worker: gevent-websocket's own, plus timeouts on clients that stall, and less
memory held per idle socket.

gevent's pywsgi waits for ever for a request line, headers or a body that never come, so a
client that opens connections and sends nothing (slowloris) holds a greenlet and a file
descriptor per connection for ever. Here a plain HTTP connection gets ``CLIENT_TIMEOUT`` seconds
(default 10) for each read and write, and as much to start its next keep-alive request. A
websocket, once upgraded, gets ``PING_INTERVAL + PING_TIMEOUT + 5`` seconds instead: a live
client answers Engine.IO's pings well within it, and a client that stopped reading frees its
connection, and what was queued for it, instead of holding them for ever.

Requests refused before the application sees them (a malformed or too large request line or
header) are answered in the contract's JSON error shape, not with an empty body.

Per socket it holds less than the stock worker (60 -> 46 KB measured at 3,000 idle sockets, see
bench/PROFILE.md): a 2 KiB read buffer instead of io's 8 KiB, no gevent spawn-tree tracking (a
debugging aid that keeps every spawner's stack frames), and Engine.IO's pings sent from timers
rather than from one greenlet per socket asleep between pings.

No application imports: gunicorn loads this class in the arbiter, before the worker patches.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import gevent
from gevent.pywsgi import _InvalidClientInput
from geventwebsocket.gunicorn.workers import GeventWebSocketWorker
from geventwebsocket.handler import WebSocketHandler


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


CLIENT_TIMEOUT = _seconds("CLIENT_TIMEOUT", 10)
WEBSOCKET_TIMEOUT = _seconds("PING_INTERVAL", 25) + _seconds("PING_TIMEOUT", 20) + 5


def _refusal(status: str, message: str) -> bytes:
    body = json.dumps({"success": False, "error": message, "code": "validation_error"}).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


BAD_REQUEST = _refusal("400 Bad Request", "The request line or headers are malformed or too large.")
URI_TOO_LONG = _refusal("414 URI Too Long", "The request line is too long.")


#: Bytes of each connection's read buffer; larger reads (a big body) bypass it.
READ_BUFFER = 2048


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


def _schedule_ping(self: Any) -> None:
    """python-engineio's ``Socket.schedule_ping``, waiting on a libev timer instead of in a
    greenlet that sleeps ``ping_interval`` (25 s) for every socket; the ping itself is sent
    from a short-lived greenlet, as before."""
    if not self.last_ping:
        return  # the previous ping is still unanswered
    self.last_ping = None
    timer = gevent.get_hub().loop.timer(self.server.ping_interval)

    def send_ping() -> None:
        from engineio import packet

        if not self.closing and not self.closed:
            self.last_ping = time.time()
            self.send(packet.Packet(packet.PING))

    def fire() -> None:
        timer.close()
        gevent.spawn_raw(send_ping)

    timer.start(fire)


class Worker(GeventWebSocketWorker):  # type: ignore[misc]
    """``geventwebsocket.gunicorn.workers.GeventWebSocketWorker`` with ``TimeoutHandler``, and
    the memory trims above (the behaviour on the wire is the stock worker's)."""

    wsgi_handler = TimeoutHandler

    def patch(self) -> None:
        """After gevent's monkey patching: Engine.IO imports ssl, which must come later."""
        super().patch()
        from engineio.socket import Socket

        gevent.config.track_greenlet_tree = False
        Socket.schedule_ping = _schedule_ping
