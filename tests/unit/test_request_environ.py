"""A request's line and headers read, and its environ made, by ``TimeoutHandler``'s copies of
pywsgi's ``read_request`` and ``get_environ``: the same state, environ and refusals as pywsgi's
own, from one index of the headers instead of a scan of them per ``get``."""

from __future__ import annotations

import io
from typing import Any

import gevent.pywsgi
import pytest

from app.patches.gevent import TimeoutHandler
from tests.unit.test_header_parsing import BLOCKS

pytestmark = pytest.mark.unit


class Upstream(TimeoutHandler):
    read_request = gevent.pywsgi.WSGIHandler.read_request
    get_environ = gevent.pywsgi.WSGIHandler.get_environ


class Server:
    def __init__(self) -> None:
        self.environ = {"wsgi.url_scheme": "http", "SERVER_NAME": "x", "SERVER_PORT": "1"}

    def get_environ(self) -> dict[str, Any]:
        return dict(self.environ)


SOCKET = object()

LINES = [
    "POST /webhook/notify HTTP/1.1\r\n",
    "GET /a%20b/c%C3%A9?x=1&y=%20 HTTP/1.1\r\n",
    "GET / HTTP/1.0\r\n",
    "HEAD / HTTP/1.1\r\n",
    "GET /\r\n",
    "POST /\r\n",
    "GET / HTTP/2.0\r\n",
    "GET / FTP/1.1\r\n",
    "GET / HTTP/1.x\r\n",
    "GET\r\n",
    "GET / HTTP/1.1 extra\r\n",
]

HEADERS = {
    **BLOCKS,
    "chunked with a length": b"Transfer-Encoding: Chunked\r\nContent-Length: 5\r\n\r\n",
    "two lengths": b"Content-Length: 3\r\ncontent-length: 4\r\n\r\n",
    "two encodings": b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
    "a zero length": b"Content-Length: 0\r\n\r\n",
    "an empty length": b"Content-Length:\r\n\r\n",
    "a negative length": b"Content-Length: -1\r\n\r\n",
    "a bad length": b"Content-Length: ten\r\n\r\n",
    "a length with blanks": b"Content-Length:  7 \r\n\r\n",
    "expect": b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    "expect twice": b"Expect: 100-continue\r\nExpect: 100-continue\r\n\r\n",
    "keep-alive": b"Connection: Keep-Alive\r\n\r\n",
    "close": b"Connection: close\r\nconnection: keep-alive\r\n\r\n",
    "websocket": b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "upgrade only": b"Upgrade: WebSocket\r\n\r\n",
    "content types": b"Content-Type: text/plain\r\ncontent-type: application/json\r\n\r\n",
    "cookies and repeats": b"Cookie: a=1\r\nCOOKIE: b=2\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
    "a line too long": b"X-A: " + b"a" * 70_000 + b"\r\n\r\n",
}


def run(handler_class: type, line: str, block: bytes) -> dict[str, Any]:
    handler = handler_class(SOCKET, ("127.0.0.1", 4242), Server(), io.BytesIO(block))
    outcome: dict[str, Any] = {}
    try:
        outcome["read"] = handler.read_request(line)
    except Exception as error:  # noqa: BLE001 - the refusal is what is compared
        outcome["error"] = (type(error), str(error))
        return outcome
    env = handler.get_environ()
    body = env.pop("wsgi.input")
    outcome["environ"] = env
    outcome["input"] = (
        "rfile"
        if body is handler.rfile
        else (type(body), body.content_length, body.socket is SOCKET, body.chunked_input)
    )
    outcome["handler"] = {
        name: getattr(handler, name)
        for name in (
            "requestline",
            "command",
            "path",
            "request_version",
            "content_length",
            "close_connection",
        )
    }
    outcome["headers"] = list(handler.headers.raw_items())
    outcome["rest"] = handler.rfile.read()
    return outcome


@pytest.mark.parametrize("block", HEADERS)
@pytest.mark.parametrize("line", LINES)
def test_the_request_and_its_environ_are_pywsgis_own(line: str, block: str) -> None:
    assert run(TimeoutHandler, line, HEADERS[block]) == run(Upstream, line, HEADERS[block])


def test_the_headers_are_indexed_once_not_scanned_per_get(monkeypatch: pytest.MonkeyPatch) -> None:
    gets: list[str] = []
    upstream_get = gevent.pywsgi.OldMessage.get

    def counting_get(self: Any, name: str, failobj: Any = None) -> Any:
        gets.append(name)
        return upstream_get(self, name, failobj)

    monkeypatch.setattr(gevent.pywsgi.OldMessage, "get", counting_get)
    webhook = HEADERS["a webhook"]
    outcome = run(TimeoutHandler, LINES[0], webhook)
    assert outcome["environ"]["CONTENT_LENGTH"] == "64"
    assert gets == []  # upstream: seven gets, each lower-casing every header's name
