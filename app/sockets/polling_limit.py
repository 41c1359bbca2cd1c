"""Long-polling POSTs over ``MAX_CONTENT_LENGTH`` are answered 413 before Engine.IO sees them.

python-engineio refuses such a POST by closing the session, and that close waits for the
session's queue to drain into a long-polling GET, which a client busy uploading never sends:
the request would hang for ever, holding its greenlet and connection. Answered here, it never
gets that far. (Over websocket, Engine.IO itself drops a message over the limit.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from app.errors import ErrorCode, error_body

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
SOCKETIO_PATH = "/socket.io"


class PollingBodyLimit:
    def __init__(self, wsgi_app: WSGIApp, limit: int) -> None:
        self.wsgi_app = wsgi_app
        self.limit = limit
        self.refusal = json.dumps(error_body(ErrorCode.PAYLOAD_TOO_LARGE)).encode()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        length = str(environ.get("CONTENT_LENGTH") or "")
        if (
            environ.get("REQUEST_METHOD") == "POST"
            and str(environ.get("PATH_INFO", "")).startswith(SOCKETIO_PATH)
            and length.isdigit()
            and int(length) > self.limit
        ):
            start_response(
                "413 Request Entity Too Large",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(self.refusal))),
                    ("Connection", "close"),
                ],
            )
            return [self.refusal]
        return self.wsgi_app(environ, start_response)


def install_polling_limit(app: Flask) -> None:
    """Wrap the Socket.IO middleware (call after ``socketio.init_app``)."""
    app.wsgi_app = PollingBodyLimit(  # type: ignore[method-assign]
        app.wsgi_app, app.config["MAX_CONTENT_LENGTH"]
    )
