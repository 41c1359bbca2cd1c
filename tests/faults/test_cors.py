"""Abuse 10: an origin outside ``ALLOWED_ORIGINS`` is refused for the Socket.IO handshake
(websocket and long-polling) and gets no CORS grant over HTTP, at a real server.

The allowed origin of these servers is ``http://allowed.example`` (tests/conftest.py); the
refused ones include look-alikes (a suffix, a port, another scheme, ``null``).
``tests/integration/test_security.py`` checks the CORS headers on the test client.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import requests
import websocket

from tests.e2e import servers
from tests.faults.conftest import StartServer

ALLOWED = "http://allowed.example"
REFUSED = [
    "http://evil.example",
    "http://allowed.example.evil.example",
    "http://allowed.example:8080",
    "https://allowed.example",
    "null",
]


def test_an_origin_outside_the_list_is_refused_for_sockets_and_http(
    start_server: StartServer, token: Callable[..., str]
) -> None:
    server = start_server(allow=[r"is not an accepted origin"])  # engine.io says it once
    good = token("cors-user")
    polling = f"{server.url}/socket.io/?EIO=4&transport=polling"
    granted = {}
    for origin in [ALLOWED, *REFUSED]:
        headers = {"Origin": origin}
        socket_answer = websocket_handshake(server, origin, good)
        poll = requests.get(polling, headers=headers, timeout=5)
        preflight = requests.options(
            f"{server.url}/api/notifications",
            headers=headers
            | {
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
            timeout=5,
        )
        call = requests.get(
            f"{server.url}/api/notifications",
            headers=headers | {"Authorization": f"Bearer {good}"},
            timeout=5,
        )
        webhook = requests.options(
            f"{server.url}/webhook/notify",
            headers=headers | {"Access-Control-Request-Method": "POST"},
            timeout=5,
        )
        granted[origin] = (
            socket_answer,
            poll.status_code,
            preflight.headers.get("Access-Control-Allow-Origin"),
            call.status_code,
            call.headers.get("Access-Control-Allow-Origin"),
            webhook.headers.get("Access-Control-Allow-Origin"),
        )
    assert granted[ALLOWED] == ("connected", 200, ALLOWED, 200, ALLOWED, ALLOWED)
    for origin in REFUSED:
        assert granted[origin][0] in ("refused 400", "refused: closed"), granted[origin]
        assert granted[origin][1:] == (400, None, 200, None, None), (
            origin,
            granted[origin],
        )


def websocket_handshake(server: servers.Server, origin: str, token: str) -> str:
    """The Engine.IO upgrade and the Socket.IO CONNECT with exactly this Origin header:
    ``connected``, or how it was refused (gevent-websocket may complete the upgrade before
    Engine.IO refuses the origin, which then closes the connection without an OPEN packet)."""
    ws = websocket.WebSocket()
    try:
        ws.connect(
            f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket",
            origin=origin,
            timeout=10,
        )
    except websocket.WebSocketBadStatusException as refused:
        ws.shutdown()
        return f"refused {refused.status_code}"
    try:
        opened = ws.recv()
        if not opened.startswith("0{"):
            return "refused: closed"
        ws.send("40" + json.dumps({"token": token}))
        return "connected" if ws.recv().startswith("40{") else "refused by Socket.IO"
    except websocket.WebSocketConnectionClosedException:
        return "refused: closed"
    finally:
        ws.shutdown()  # no close handshake: the server may be gone already
