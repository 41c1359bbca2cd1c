"""Flask overrides: per-request work this service never needs.

- ``Flask.ensure_sync`` checks every hook and view for ``async def`` on every call; there are
  none here (gevent does the waiting), so it returns the function as it is.
- ``Flask.create_url_adapter`` matches the request's URL for every request context, including
  the one Flask-SocketIO makes for each Socket.IO event from the handshake's environ: its
  ``/socket.io/`` path is no route, so each event built and stored a 404. Those get no adapter.
- Flask's default session interface looks for, and verifies, a session cookie on every request;
  this service has no cookie sessions (every caller authenticates with a key or a token).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface
from werkzeug.routing import MapAdapter

from app.patches.fence import fence

fence(
    "flask.app.Flask.ensure_sync",
    "93da8bd89e2a20b7d3e41798422ab8914e970a39c3c57f41ab160aefb2560b90",
    "replaced by the identity: no async views or hooks",
)
fence(
    "werkzeug.datastructures.headers.Headers.add",
    "28e8052183b368d6306adfe09b53758e0fe5e7457f71b337965e4daa50874c01",
    "relied on by CapturedHeaders: appends (name, checked str value) to _list",
)
fence(
    "flask.app.Flask.create_url_adapter",
    "066133a70e406d124355efcc79198073d03cf368d5c260019880052884605b60",
    "wrapped: no adapter for Socket.IO event contexts",
)

#: Where Engine.IO answers (Flask-SocketIO's default ``path``); no Flask route lives under it.
SOCKETIO_PATH = "/socket.io/"


class NoSessions(SessionInterface):
    """No cookie sessions: every caller authenticates with a key or a token. Flask's default
    interface would still look for, and verify, a session cookie on every request."""

    def open_session(self, app: Flask, request: object) -> None:
        return None

    def save_session(self, app: Flask, session: object, response: Response) -> None:
        return None


class NotifyFlask(Flask):
    """Flask without per-request work this service never needs: cookie sessions, the check of
    every hook and view for ``async def`` (there are none; gevent does the waiting), and URL
    matching for the request context of each Socket.IO event."""

    session_interface = NoSessions()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return func

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        """No URL matching for the request context Flask-SocketIO makes for each Socket.IO
        event (it carries the handshake's ``/socket.io/`` path, which is no route: matching it
        built and stored a 404 on every event)."""
        if request is not None and request.path.startswith(SOCKETIO_PATH):
            return None
        return super().create_url_adapter(request)
