"""An upgraded websocket's reader in a greenlet of its own: the connection's greenlet (the
handshake's deep stack) ends, the connection stays open and answers, and the reader's end
closes it, as the connection's greenlet did before; a full pool or a request with a body keeps
the reader in the connection's greenlet."""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterator
from typing import Any

import gevent
import gevent.pool
import gevent.socket
import pytest

from app.patches.gevent import DetachingServer, TimeoutHandler

pytestmark = pytest.mark.unit


class EchoApp:
    """A WSGI app that echoes a websocket's messages, from a detached reader when it can."""

    def __init__(self) -> None:
        self.connection_greenlets: list[Any] = []
        self.reader_greenlets: list[Any] = []
        self.detached: list[bool] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        ws = environ["wsgi.websocket"]
        self.connection_greenlets.append(gevent.getcurrent())

        finish = ws.handler.detach()

        def reader() -> None:
            self.reader_greenlets.append(gevent.getcurrent())
            while (message := ws.receive()) is not None:
                ws.send(message)
            if finish is not None:
                finish()

        self.detached.append(finish is not None)
        if finish is None:
            reader()
        else:
            gevent.spawn(reader)
        return []


@pytest.fixture
def served() -> Iterator[tuple[DetachingServer, EchoApp]]:
    app = EchoApp()
    server = DetachingServer(
        ("127.0.0.1", 0), application=app, handler_class=TimeoutHandler, spawn=gevent.pool.Pool(2)
    )
    server.log = server.error_log = None  # nothing on stderr
    server.start()
    try:
        yield server, app
    finally:
        server.stop(timeout=1)


def handshake(port: int, extra: bytes = b"") -> Any:
    connection = gevent.socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16))
    connection.sendall(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n" + extra + b"\r\n"
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 101")
    return connection


def send_text(connection: Any, text: bytes) -> None:
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(text))
    connection.sendall(struct.pack("!BB", 0x81, 0x80 | len(text)) + mask + masked)


def read_frame(connection: Any) -> tuple[int, bytes]:
    head = connection.recv(2)
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    payload = b""
    while len(payload) < length:
        payload += connection.recv(length - len(payload))
    return opcode, payload


def test_the_reader_runs_detached_and_closes_the_connection(served: Any) -> None:
    server, app = served
    connection = handshake(server.server_port)
    send_text(connection, b"hello")
    assert read_frame(connection) == (0x1, b"hello")
    gevent.sleep(0.05)
    assert app.detached == [True]
    assert app.connection_greenlets[0].dead  # its stack freed, the connection still open
    assert not app.reader_greenlets[0].dead
    assert len(server.pool) == 1  # gunicorn still counts the connection
    assert not server.detached  # the server did not close it when the handler returned
    send_text(connection, b"again")
    assert read_frame(connection) == (0x1, b"again")

    connection.sendall(struct.pack("!BB", 0x88, 0x80) + b"\0\0\0\0")  # the client closes
    assert read_frame(connection)[0] == 0x8  # the close frame, as gevent-websocket sends it
    assert connection.recv(16) == b""  # then the connection is closed
    gevent.sleep(0.05)
    assert app.reader_greenlets[0].dead
    assert len(server.pool) == 0
    connection.close()


def test_a_full_pool_keeps_the_reader_in_the_connection_greenlet(served: Any) -> None:
    server, app = served
    first = handshake(server.server_port)
    second = handshake(server.server_port)  # the pool (2) holds it and the first's token
    send_text(second, b"inline")
    assert read_frame(second) == (0x1, b"inline")
    assert app.detached == [True, False]
    assert app.reader_greenlets[1] is app.connection_greenlets[1]
    for connection in (first, second):
        connection.sendall(struct.pack("!BB", 0x88, 0x80) + b"\0\0\0\0")
        assert read_frame(connection)[0] == 0x8
        assert connection.recv(16) == b""
        connection.close()


def test_a_request_with_a_body_is_not_detached(served: Any) -> None:
    server, app = served
    connection = handshake(server.server_port, b"Content-Length: 3\r\n")
    connection.sendall(b"abc")
    send_text(connection, b"x")
    gevent.sleep(0.05)
    assert app.detached == [False]
    connection.close()
