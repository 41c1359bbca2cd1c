"""The Engine.IO endpoint's HTTP edges, answered before python-engineio sees the request:
long-polling bodies over ``MAX_CONTENT_LENGTH`` (413), chunked bodies, and requests the protocol
refuses (400).

- A POST over the limit: python-engineio refuses it by closing the session, and that close
  waits for the session's queue to drain into a long-polling GET, which a client busy
  uploading never sends: the request would hang for ever, holding its greenlet and connection.
  (Over websocket, Engine.IO itself drops a message over the limit.)
- A chunked POST (no ``Content-Length``, as a proxy forwarding an HTTP/2 body may send it):
  python-engineio reads ``CONTENT_LENGTH`` bytes, that is none, and answers ``200 ok``: every
  event of a polling client lost. Here the body is read whole (up to the limit, else 413) and
  handed on with its length.
- A handshake without ``transport`` (python-engineio takes it as polling) and a method other
  than GET, POST or OPTIONS (python-engineio: 405): 400, as the Engine.IO protocol asks.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from app.errors import ErrorCode, error_body

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Answer = tuple[str, list[tuple[str, str]], bytes]
SOCKETIO_PATH = "/socket.io"
ENGINEIO_METHODS = frozenset(("GET", "POST", "OPTIONS"))


def refusal(status: str, code: ErrorCode, message: str | None = None) -> Answer:
    text = json.dumps(error_body(code, message)).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(text))),
        ("Connection", "close"),
    ]
    return status, headers, text


TOO_LARGE = refusal("413 Request Entity Too Large", ErrorCode.PAYLOAD_TOO_LARGE)
NO_TRANSPORT = refusal(
    "400 Bad Request",
    ErrorCode.VALIDATION_ERROR,
    "The Engine.IO transport query parameter is missing.",
)
BAD_METHOD = refusal(
    "400 Bad Request", ErrorCode.VALIDATION_ERROR, "Engine.IO answers GET, POST and OPTIONS only."
)


class PollingBodyLimit:
    def __init__(self, wsgi_app: WSGIApp, limit: int) -> None:
        self.wsgi_app = wsgi_app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not str(environ.get("PATH_INFO", "")).startswith(SOCKETIO_PATH):
            return self.wsgi_app(environ, start_response)
        method = environ.get("REQUEST_METHOD")
        answer = None
        if method not in ENGINEIO_METHODS:
            answer = BAD_METHOD
        elif "transport=" not in str(environ.get("QUERY_STRING", "")):
            answer = NO_TRANSPORT
        elif method == "POST":
            answer = self.read_whole_body(environ)
        if answer is None:
            return self.wsgi_app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def read_whole_body(
        self, environ: dict[str, Any]
    ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """413 over the limit; a body without ``Content-Length`` (chunked) is read here, up to
        the limit, and handed on with its length. None: go on."""
        length = str(environ.get("CONTENT_LENGTH") or "")
        if length.isdigit():
            return TOO_LARGE if int(length) > self.limit else None
        body = environ["wsgi.input"].read(self.limit + 1)
        if len(body) > self.limit:
            return TOO_LARGE
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return None


def install_polling_limit(app: Flask) -> None:
    """Wrap the Socket.IO middleware (call after ``socketio.init_app``)."""
    app.wsgi_app = PollingBodyLimit(  # type: ignore[method-assign]
        app.wsgi_app, app.config["MAX_CONTENT_LENGTH"]
    )
