"""gunicorn settings for notify-server; no application imports here (preload stays off).

One worker per gunicorn process: Socket.IO's long-polling needs every request of a session to
reach the process that holds it, and gunicorn's balancing between its workers is not sticky.
Scale with more processes (or machines) behind a sticky load balancer, sharing rooms through
Redis; see the README.

The worker is gevent-websocket's, trimmed for many idle sockets (see ``LeanWebSocketWorker``).
"""

import os
import time

import gevent
from geventwebsocket.gunicorn.workers import GeventWebSocketWorker
from geventwebsocket.handler import WebSocketHandler

#: Bytes of the read buffer of each connection (io's default is 8 KiB, held by every socket).
READ_BUFFER = 2048


class LeanWebSocketHandler(WebSocketHandler):  # type: ignore[misc]
    """gevent-websocket's handler with a 2 KiB read buffer instead of 8 KiB per connection.

    Larger reads (a big request body) bypass the buffer, so nothing else changes.
    """

    def __init__(self, sock, address, server, rfile=None):  # noqa: ANN001
        if rfile is None:
            rfile = sock.makefile("rb", READ_BUFFER)
        super().__init__(sock, address, server, rfile=rfile)


def _schedule_ping(self) -> None:  # noqa: ANN001 - an engineio.socket.Socket
    """Engine.IO's ``Socket.schedule_ping`` with a timer in place of a sleeping greenlet.

    python-engineio keeps one greenlet per socket asleep for ``ping_interval`` (25 s) between
    pings; a libev timer does the waiting here and the ping is sent from a short-lived greenlet,
    exactly as before. Measured: 7.7 KB less per idle socket (bench/PROFILE.md).
    """
    if not self.last_ping:
        return  # the previous ping is still unanswered (as in python-engineio)
    self.last_ping = None
    timer = gevent.get_hub().loop.timer(self.server.ping_interval)

    def send_ping() -> None:
        from engineio import packet

        if not self.closing and not self.closed:
            self.last_ping = time.time()
            self.send(packet.Packet(packet.PING))

    def fire() -> None:
        timer.close()
        gevent.spawn_raw(send_ping)

    timer.start(fire)


class LeanWebSocketWorker(GeventWebSocketWorker):  # type: ignore[misc]
    """``geventwebsocket.gunicorn.workers.GeventWebSocketWorker``, holding less per socket:
    a smaller read buffer, no greenlet spawn tree (gevent's debugging aid keeps every spawner's
    stack frames), and Engine.IO pings from timers rather than one sleeping greenlet per socket.
    The behaviour on the wire is the stock worker's; ``-k
    geventwebsocket.gunicorn.workers.GeventWebSocketWorker`` works too, with more memory."""

    wsgi_handler = LeanWebSocketHandler

    def patch(self) -> None:
        """After gevent's monkey patching (Engine.IO imports ssl, which must come after)."""
        super().patch()
        from engineio.socket import Socket

        gevent.config.track_greenlet_tree = False
        Socket.schedule_ping = _schedule_ping


bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '3000')}"  # noqa: S104
worker_class = LeanWebSocketWorker
workers = 1
# Connections a worker accepts at once (each socket is one greenlet).
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "20000"))
# The gevent worker notifies the arbiter from its own loop, so long-lived sockets are fine.
timeout = 30
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "15"))
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl by default; several processes on
# one machine would fight over it. Nothing here uses it.
control_socket_disable = True
preload_app = False
