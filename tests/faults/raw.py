"""Clients that behave as no well-mannered client does: raw handshakes, sockets that never read,
requests written byte by byte."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import requests
import socketio
import websocket

from tests.e2e import servers

ACCEPTED = "accepted"


def handshake(url: str, auth: Any, headers: dict[str, str] | None = None) -> Any:
    """Connect once with ``auth``: ``ACCEPTED``, the ``connect_error`` data of a refusal, or the
    ``ConnectionError`` text when the server refused below Socket.IO (no ``connect_error``)."""
    http = requests.Session()
    client = socketio.Client(reconnection=False, http_session=http)
    refusal: list[Any] = []
    done = threading.Event()

    @client.event
    def connect_error(data: Any) -> None:
        refusal.append(data)
        done.set()

    try:
        client.connect(
            url, auth=auth, headers=headers or {}, transports=["websocket"], wait_timeout=10
        )
    except socketio.exceptions.ConnectionError as error:
        done.wait(2)
        return refusal[0] if refusal else f"ConnectionError: {error}"
    finally:
        if not client.connected:
            client.eio.disconnect(abort=True)
            if client.eio.ws is not None:  # dropped by the server mid-handshake
                client.eio.ws.close()
        http.close()
    client.disconnect()
    return ACCEPTED


def refused_as(code: str, message: str = "unauthorized") -> dict[str, Any]:
    """The ``connect_error`` data of a refusal with ``code``."""
    return {"message": message, "data": {"code": code}}


def engineio_socket(
    server: servers.Server, receive_buffer: int | None = None
) -> websocket.WebSocket:
    """An Engine.IO session over a websocket, opened (OPEN packet read), no namespace yet."""
    options = [(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)] if receive_buffer else []
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket",
        sockopt=options,
        timeout=10,
    )
    assert ws.recv().startswith("0{")  # Engine.IO OPEN
    return ws


def never_reading(server: servers.Server, token: str) -> websocket.WebSocket:
    """A Socket.IO session with a tiny receive buffer that reads only its handshake answers."""
    ws = engineio_socket(server, receive_buffer=4096)
    ws.send("40" + json.dumps({"token": token}))
    assert ws.recv().startswith("40{")  # Socket.IO CONNECT accepted
    return ws


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes ``sock`` within ``within`` seconds (reads until EOF)."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True
