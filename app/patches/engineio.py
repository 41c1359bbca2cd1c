"""python-engineio overrides.

``Socket.schedule_ping`` (engineio/socket.py) starts a background task per socket that sleeps
``ping_interval`` (25 s by default) and then sends a PING. Under gevent that is one greenlet per
connected socket, asleep almost all of the time, with its saved C stack and frames: a few KB per
idle socket for nothing. Here the wait is a libev timer (a few hundred bytes) and the ping is
sent from a short-lived greenlet when it fires; what goes on the wire, and when, is unchanged.
"""

from __future__ import annotations

import time
from typing import Any

import gevent

from app.patches.fence import fence

fence(
    "engineio.base_server.BaseServer.__init__",
    "a06b17502fbd9646e3f29ec85f1e53dbbcdc9ceecce6c2969eb83e4ef1726ee2",
    "relied on by close_all: ``sockets`` is the dict of open sessions by sid",
)
fence(
    "engineio.socket.Socket.close",
    "05fac55831999f25188d658b733f8e1044d5325becfd3c87011a6b03d30003b9",
    "relied on by close_all: close(wait=False, reason=...)",
)
fence(
    "engineio.socket.Socket.schedule_ping",
    "fe316639159cd70d34cdb911a055fc1a0056ff15615b8460a1ab6593c95e9372",
    "replaced by schedule_ping_on_timer: same pings, a libev timer instead of a greenlet",
)


def schedule_ping_on_timer(self: Any) -> None:
    """``Socket.schedule_ping``: the same ping, waited for on a libev timer."""
    if not self.last_ping:
        return  # the previous ping is still unanswered
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


def close_all(engine: Any) -> None:
    """Close every session of an Engine.IO server at once (SIGTERM), their disconnect handlers
    run. python-engineio has no public call for it: its sessions are in ``engine.sockets``.

    Without waiting for the CLOSE packet to go out: a polling client that is gone would never
    fetch it, and waiting would leave every later socket open.
    """
    for sid, session in list(engine.sockets.items()):
        session.close(wait=False, reason=engine.reason.SERVER_DISCONNECT)
        engine.sockets.pop(sid, None)


def install() -> None:
    """Call after gevent's monkey patching (engineio imports ssl)."""
    from engineio.socket import Socket

    Socket.schedule_ping = schedule_ping_on_timer
