"""Client events handled on python-socketio's server, with an app context only.

Flask-SocketIO runs each event handler inside a Flask request context built from the
handshake's environ (a ``Request``, a session lookup, context pushes and pops): 14 % of a
``send_notification`` (py-spy), for handlers that read nothing of a request but the socket's
id and address. A handler registered here with ``@server_event("name")`` is put on
``socketio.server`` itself (``install``, after ``socketio.init_app``) and runs with the app
context of the app that accepted the handshake, the event current (``app.sockets.context``);
its return value is the ack, and an exception goes to the same default error handler
Flask-SocketIO would call (``@socketio.on_error_default``), so acks and error shapes are
Flask-SocketIO's. Connect and disconnect stay with Flask-SocketIO (they need its handshake
handling). python-socketio's own dispatch of these events (handler tables, a ``Greenlet`` per
event, the ack walked for bytes) is skipped too: ``app.patches.event_dispatch``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.extensions import socketio
from app.patches import event_dispatch
from app.registry import services
from app.sockets import context

Handler = Callable[..., Any]
NAMESPACE = "/"
#: Event name -> handler, filled by ``server_event`` at import time.
HANDLERS: dict[str, Handler] = {}


def server_event(name: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` for the client event ``name`` (in place of ``@socketio.on``)."""

    def register(handler: Handler) -> Handler:
        HANDLERS[name] = handler
        if socketio.server is not None:  # registered after init_app: put it on now
            socketio.server.on(name, dispatcher(name, handler), namespace=NAMESPACE)
        return handler

    return register


def dispatcher(name: str, handler: Handler) -> Callable[..., Any]:
    """What python-socketio calls: ``(sid, *args)`` in, the ack out."""

    def dispatch(sid: str, *args: Any) -> Any:
        server = socketio.server
        environ = server.get_environ(sid, namespace=NAMESPACE) if server else None
        if not environ:
            return "", 400  # an unknown socket: Flask-SocketIO's answer
        app = environ["flask.app"]
        user = services(app).socket_users.get(sid)  # once for the event (sessions.current_user)
        token = context.enter(context.SocketEvent(sid, name, environ, user))
        try:
            with app.app_context():
                try:
                    return handler(*args)
                except Exception as error:
                    on_error = socketio.default_exception_handler
                    if on_error is None:
                        raise
                    return on_error(error)
        finally:
            context.leave(token)

    dispatch.__name__ = f"dispatch_{name}"
    setattr(dispatch, event_dispatch.MARK, True)  # python-socketio's dispatch skipped for it
    return dispatch


def install() -> None:
    """Put every registered handler on the current ``socketio.server`` (after init_app)."""
    server = socketio.server
    for name, handler in HANDLERS.items():
        server.on(name, dispatcher(name, handler), namespace=NAMESPACE)
    event_dispatch.install(server)
