"""A keep-alive connection's next request line: waited for with the connection's own
``Timeout`` (``IdleWaitIO``), without a ``recv`` that finds nothing first and a new
``Timeout`` per request; the answers, pipelined requests, bodies and the idle limit stay
pywsgi's."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.pywsgi
import gevent.socket
import gevent.timeout
import pytest

import app.patches.gevent as patches
from app.patches.gevent import IdleWaitIO, TimeoutHandler

pytestmark = pytest.mark.unit


def echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    body = environ["wsgi.input"].read()
    answer = b"%s %s %d:%s" % (
        environ["REQUEST_METHOD"].encode(),
        environ["PATH_INFO"].encode(),
        len(body),
        body,
    )
    start_response("200 OK", [("Content-Length", str(len(answer)))])
    return iter([answer])


def serve() -> gevent.pywsgi.WSGIServer:
    server = gevent.pywsgi.WSGIServer(
        ("127.0.0.1", 0), echo, handler_class=TimeoutHandler, log=None
    )
    server.start()
    return server


PENDING: dict[int, bytes] = {}


def read_answer(client: Any) -> bytes:
    """One answer's body (Content-Length framed; what follows it is kept for the next call),
    or what came before the connection closed."""
    data = PENDING.pop(client.fileno(), b"")
    with gevent.Timeout(5):
        while b"\r\n\r\n" not in data:
            chunk = client.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(body) < length:
            body += client.recv(65536)
    PENDING[client.fileno()] = body[length:]
    return body[:length]


def request(path: str, body: bytes = b"", *, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s" % (
        path.encode(),
        len(body),
        extra,
        body,
    )


def test_keep_alive_requests_wait_without_a_failed_recv_or_a_timeout_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = serve()
    port = server.server_port
    server_waits: list[str] = []
    timeouts: list[float] = []
    upstream_wait = gevent.socket.socket._wait
    upstream_init = gevent.timeout.Timeout.__init__

    def counting_wait(self: Any, watcher: Any, *args: Any) -> Any:
        if watcher is self._read_event and self.getsockname()[1] == port:
            server_waits.append("read")
        return upstream_wait(self, watcher, *args)

    def counting_init(self: Any, seconds: Any = None, *args: Any, **kwargs: Any) -> None:
        timeouts.append(seconds)
        upstream_init(self, seconds, *args, **kwargs)

    monkeypatch.setattr(gevent.socket.socket, "_wait", counting_wait)
    monkeypatch.setattr(gevent.timeout.Timeout, "__init__", counting_init)
    try:
        with gevent.socket.create_connection(("127.0.0.1", port)) as client:
            answers = []
            for n in range(6):
                client.sendall(request(f"/n{n}", b"body%d" % n))
                answers.append(read_answer(client))
                gevent.sleep(0.01)  # the server waits for the next request line
    finally:
        server.stop()
    assert answers == [b"POST /n%d 5:body%d" % (n, n) for n in range(6)]
    assert server_waits == []  # upstream: a failed recv, then a wait, per keep-alive request
    assert timeouts.count(patches.CLIENT_TIMEOUT) <= 1  # upstream: one per wait


def test_pipelined_requests_are_answered_at_once() -> None:
    server = serve()
    try:
        with gevent.socket.create_connection(("127.0.0.1", server.server_port)) as client:
            client.sendall(request("/a", b"1") + request("/b", b"22") + request("/c"))
            started = time.monotonic()
            answers = [read_answer(client) for _ in range(3)]
            assert time.monotonic() - started < 1
    finally:
        server.stop()
    assert answers == [b"POST /a 1:1", b"POST /b 2:22", b"POST /c 0:"]


def test_chunked_and_expect_continue_bodies_on_a_kept_alive_connection() -> None:
    server = serve()
    try:
        with gevent.socket.create_connection(("127.0.0.1", server.server_port)) as client:
            client.sendall(request("/first", b"x"))
            assert read_answer(client) == b"POST /first 1:x"
            gevent.sleep(0.01)
            client.sendall(
                b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            )
            assert read_answer(client) == b"POST /chunked 5:abcde"
    finally:
        server.stop()


def test_expect_continue_after_an_idle_wait() -> None:
    server = serve()
    try:
        with gevent.socket.create_connection(("127.0.0.1", server.server_port)) as client:
            client.sendall(request("/first"))
            assert read_answer(client) == b"POST /first 0:"
            gevent.sleep(0.01)
            client.sendall(
                b"POST /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            with gevent.Timeout(5):
                interim = client.recv(65536)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            client.sendall(b"data")
            assert read_answer(client) == b"POST /expect 4:data"
    finally:
        server.stop()


def test_an_idle_keep_alive_connection_is_closed_after_the_client_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(patches, "CLIENT_TIMEOUT", 0.3)
    server = serve()
    try:
        with gevent.socket.create_connection(("127.0.0.1", server.server_port)) as client:
            client.sendall(request("/a"))
            assert read_answer(client) == b"POST /a 0:"
            started = time.monotonic()
            with gevent.Timeout(5):
                assert client.recv(65536) == b""  # closed, nothing sent
            assert 0.2 < time.monotonic() - started < 2
    finally:
        server.stop()


def test_an_idle_wait_that_times_out_marks_the_reader_as_upstream_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_side, client_side = gevent.socket.socketpair()
    with server_side, client_side:
        server_side.settimeout(0.05)
        raw = IdleWaitIO(server_side, "r")
        raw.idle = True
        with pytest.raises(TimeoutError, match="timed out"):
            raw.readinto(bytearray(16))
        with pytest.raises(OSError, match="cannot read from timed out object"):
            raw.readinto(bytearray(16))
        raw.close()
        fresh = IdleWaitIO(server_side, "r")
        fresh.idle = True
        client_side.sendall(b"ok")
        buffer = bytearray(16)
        assert fresh.readinto(buffer) == 2
        assert bytes(buffer[:2]) == b"ok"
        fresh.close()
