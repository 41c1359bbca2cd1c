"""An answer's headers and small first chunk in one ``sendall``, and a plain socket's ``sendall``
as one non-blocking ``send`` when the kernel takes it whole: the bytes on the wire are pywsgi's
and gevent's own, in fewer system calls."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.pywsgi
import gevent.socket
import pytest

from app.patches.gevent import ONE_SEND_LIMIT, TimeoutHandler, sendall_at_once

pytestmark = pytest.mark.unit

DATE = re.compile(rb"\r\nDate: [^\r]*")


def app_answering(body: bytes, *, length: bool = True, status: str = "200 OK") -> Any:
    def app(_environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        headers = [("Content-Type", "application/json")]
        if length:
            headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return iter([body] if body else [])

    return app


def exchange(handler: type, app: Any, request: bytes) -> tuple[bytes, list[int]]:
    """What a raw client reads from a server with ``handler``, and the size of each
    ``_sendall`` the handler made."""
    sizes: list[int] = []

    class Counting(handler):  # type: ignore[misc, valid-type]
        def _sendall(self, data: Any) -> None:
            sizes.append(len(data))
            super()._sendall(data)

    server = gevent.pywsgi.WSGIServer(("127.0.0.1", 0), app, handler_class=Counting, log=None)
    server.start()
    try:
        client = gevent.socket.create_connection(("127.0.0.1", server.server_port))
        with client:
            client.sendall(request)
            received = b""
            with gevent.Timeout(5):
                while chunk := client.recv(65536):
                    received += chunk
    finally:
        server.stop()
    return DATE.sub(b"", received), sizes


REQUEST = b"POST /webhook/notify HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
HTTP10 = b"GET / HTTP/1.0\r\n\r\n"
SMALL = b'{"success":true,"notification":{"id":1,"message":"h\xc3\xa9llo"}}'
CASES = {
    "small JSON": (app_answering(SMALL), REQUEST),
    "empty body": (app_answering(b"", status="204 No Content"), REQUEST),
    "chunked": (app_answering(SMALL, length=False), REQUEST),
    "HTTP/1.0 without length": (app_answering(SMALL, length=False), HTTP10),
    "at the limit": (app_answering(b"x" * ONE_SEND_LIMIT), REQUEST),
    "over the limit": (app_answering(b"y" * (ONE_SEND_LIMIT + 1)), REQUEST),
}


class UpstreamWrites(TimeoutHandler):  # type: ignore[misc]
    """Our handler with pywsgi's own ``_write_with_headers``: only the override differs."""

    _write_with_headers = gevent.pywsgi.WSGIHandler._write_with_headers


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_the_bytes_are_pywsgis(case: str) -> None:
    app, request = CASES[case]
    ours, _ = exchange(TimeoutHandler, app, request)
    upstream, _ = exchange(UpstreamWrites, app, request)
    assert ours == upstream
    assert ours.startswith(b"HTTP/1.")


def test_a_small_answer_is_one_sendall() -> None:
    received, sizes = exchange(TimeoutHandler, app_answering(SMALL), REQUEST)
    assert received.endswith(SMALL)
    assert sizes == [len(received) + len(b"\r\nDate: ") + 29]  # headers and body together


def test_a_chunked_or_large_answer_keeps_its_own_sends() -> None:
    _, chunked = exchange(TimeoutHandler, app_answering(SMALL, length=False), REQUEST)
    assert len(chunked) == 3  # headers, the chunk, the last chunk
    _, large = exchange(TimeoutHandler, app_answering(b"y" * (ONE_SEND_LIMIT + 1)), REQUEST)
    assert large[1:] == [ONE_SEND_LIMIT + 1]


class PlainSocket(gevent.socket.socket):
    """A gevent socket with the override, and a count of its non-blocking sends."""

    sendall = sendall_at_once


def socket_pair() -> tuple[Any, Any]:
    left, right = gevent.socket.socketpair()
    ours = PlainSocket(fileno=left.detach())
    return ours, right


def read_exactly(sock: Any, size: int) -> bytes:
    received = b""
    with gevent.Timeout(10):
        while len(received) < size:
            received += sock.recv(65536)
    return received


@pytest.mark.parametrize("payload", [b"", b"x", bytearray(b"abc" * 1000), b"z" * 200_000])
def test_sendall_at_once_sends_everything(payload: bytes) -> None:
    ours, peer = socket_pair()
    with ours, peer:
        reader = gevent.spawn(read_exactly, peer, len(payload))
        ours.sendall(payload)
        assert reader.get(timeout=10) == bytes(payload)


def test_sendall_at_once_waits_for_a_full_buffer_like_gevents() -> None:
    """A buffer the kernel cannot take at once (a small SO_SNDBUF, 2 MB) is finished by gevent's
    sendall, waiting for the reader, in order."""
    ours, peer = socket_pair()
    with ours, peer:
        ours.setsockopt(gevent.socket.SOL_SOCKET, gevent.socket.SO_SNDBUF, 4096)
        payload = bytes(range(256)) * 8192
        reader = gevent.spawn(read_exactly, peer, len(payload))
        ours.sendall(payload)
        assert reader.get(timeout=10) == payload


def test_sendall_at_once_makes_one_system_call_when_it_fits(monkeypatch: Any) -> None:
    """gevent's sendall reads SO_SNDBUF on every call; the override does not."""
    ours, peer = socket_pair()
    with ours, peer:
        asked: list[Any] = []
        real = PlainSocket.getsockopt
        monkeypatch.setattr(
            PlainSocket, "getsockopt", lambda self, *a: asked.append(a) or real(self, *a)
        )
        ours.sendall(b"SELECT 1")
        assert read_exactly(peer, 8) == b"SELECT 1"
        assert asked == []


def test_sendall_at_once_is_on_plain_sockets_only(monkeypatch: Any) -> None:
    import gevent._socket3
    import gevent.ssl

    from app.patches.gevent import install_sendall

    monkeypatch.setattr(gevent._socket3.socket, "sendall", gevent._socket3.socket.sendall)
    install_sendall()  # undone after the test by monkeypatch
    assert gevent._socket3.socket.sendall is sendall_at_once
    assert gevent.ssl.SSLSocket.sendall is not sendall_at_once
