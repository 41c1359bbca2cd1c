"""Client events of ``app.sockets.dispatch`` handed straight to their dispatcher (fenced).

python-socketio takes every EVENT through ``Server._handle_event`` (the sid, the connected check,
a background task) and ``_handle_event_internal`` (``_trigger_event`` resolving the handler
through the namespace and catch-all tables, then the ACK packet, whose data it walks for bytes
before encoding). For an event whose handler on the default namespace is one of our dispatchers
(``server_event``), ``handle_event`` does the same steps itself: the same sid, the same connected
check and warning, one task per event (a raw greenlet under gevent: no ``Greenlet`` object, link
list or exception slot to make and drop), or inline when ``async_handlers`` is off (the
Flask-SocketIO test client), and the same ACK packet (``None`` -> ``[]``, a tuple expanded,
anything else one argument). A dict ack (all our handlers answer JSON objects, API.md) is not
walked for bytes: ``json.dumps`` would refuse any instead. Other events, namespaces and handlers
go to upstream's ``_handle_event`` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent
from socketio import packet

from app.patches.fence import fence

fence(
    "socketio.server.Server._handle_event",
    "3f64c030f25eb785dbd0c9c8c5df8d61050d068f6b7880a029fecdd1bf121960",
    "handle_event repeats its sid, connected check and warning, and its task per event",
)
fence(
    "socketio.server.Server._handle_event_internal",
    "37e1c84a69747f3219f466681de804e22da839342a7ce42a6143cafc53e28532",
    "answer repeats its ACK packet (the handler's value as its data)",
)

#: Marks a dispatcher (``app.sockets.dispatch``) that ``handle_event`` may call directly.
MARK = "notify_server_event"


def answer(server: Any, eio_sid: str, namespace: str, id: Any, value: Any) -> None:
    """The ACK of ``_handle_event_internal`` for the handler's ``value``."""
    if value is None:
        data: list[Any] = []
    elif isinstance(value, tuple):
        data = list(value)
    else:
        data = [value]
    plain = False if type(value) is dict else None  # None: upstream's walk for bytes
    server._send_packet(
        eio_sid,
        server.packet_class(packet.ACK, namespace=namespace, id=id, data=data, binary=plain),
    )


def run(
    server: Any, handler: Callable[..., Any], sid: str, eio_sid: str, data: Any, id: Any
) -> None:
    value = handler(sid, *data[1:])
    if id is not None:
        answer(server, eio_sid, "/", id, value)


def install(server: Any) -> None:
    """``server._handle_event`` for this server only (upstream's for every other server)."""
    upstream = type(server)._handle_event
    gevent_mode = server.async_mode == "gevent"

    def handle_event(eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        handler = None
        if namespace in (None, "/") and "/" in server.handlers:
            handler = server.handlers["/"].get(data[0])
        if handler is None or not getattr(handler, MARK, False):
            upstream(server, eio_sid, namespace, id, data)
            return
        sid = server.manager.sid_from_eio_sid(eio_sid, "/")
        server.logger.info('received event "%s" from %s [%s]', data[0], sid, "/")
        if not server.manager.is_connected(sid, "/"):
            server.logger.warning("%s is not connected to namespace %s", sid, "/")
            return
        if not server.async_handlers:
            run(server, handler, sid, eio_sid, data, id)
        elif gevent_mode:
            gevent.spawn_raw(run, server, handler, sid, eio_sid, data, id)
        else:
            server.start_background_task(run, server, handler, sid, eio_sid, data, id)

    server._handle_event = handle_event
