"""Flask-SocketIO override: the WSGI environ of a request, not a copy of it, carries the app.

``_SocketIOMiddleware.__call__`` copies every request's environ to add ``flask.app`` to it.
For a Socket.IO connection python-engineio keeps that copy for the session's life, while
gevent's handler keeps the original: two dicts of some 30 entries per idle socket (about 1.5 KB
of the 46 KB each held, bench/PROFILE.md). pywsgi builds a fresh environ for every request, so
nothing else sees the key added in place. ``install`` gives the app's middleware (made by
``socketio.init_app``) the class ``NoCopyMiddleware``, which puts it there without the copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import socketio
from flask import Flask
from flask_socketio import _SocketIOMiddleware

from app.patches.fence import fence

fence(
    "flask_socketio._SocketIOMiddleware.__call__",
    "7cfbb7890542786bb2200e841b6ec5505dafa30c503f8d27a319ae5830b5f478",
    "replaced by NoCopyMiddleware.__call__: flask.app set on the request's own environ",
)


class NoCopyMiddleware(_SocketIOMiddleware):  # type: ignore[misc]
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """``_SocketIOMiddleware.__call__`` without ``environ.copy()``."""
        environ["flask.app"] = self.flask_app
        return socketio.WSGIApp.__call__(self, environ, start_response)


def install(app: Flask) -> None:
    """Call right after ``socketio.init_app(app)``, before anything wraps ``app.wsgi_app``."""
    middleware = app.wsgi_app
    if type(middleware) is not _SocketIOMiddleware:
        raise RuntimeError("app.wsgi_app is not Flask-SocketIO's middleware")
    middleware.__class__ = NoCopyMiddleware
