"""The gunicorn worker: gevent-websocket's own, with the overrides of ``app/patches/``: timeouts
on clients that stall, JSON refusals before the app, and less memory held per idle socket (no
greenlet while it is idle: its connection's server is ``DetachingServer``; see bench/PROFILE.md).

No application imports at module level: gunicorn loads this class in the arbiter, before the
worker's gevent monkey patching; the patches are imported in ``Worker.patch``, after it.
"""

from __future__ import annotations

import gevent
from geventwebsocket.gunicorn.workers import GeventWebSocketWorker


class Worker(GeventWebSocketWorker):  # type: ignore[misc]
    """``geventwebsocket.gunicorn.workers.GeventWebSocketWorker`` with ``TimeoutHandler`` and
    Engine.IO pings from timers (the behaviour on the wire is the stock worker's)."""

    def patch(self) -> None:
        """After gevent's monkey patching (the worker runs the app after this)."""
        super().patch()
        from app.patches import engineio, geventwebsocket
        from app.patches.gevent import DetachingServer, TimeoutHandler, install_sendall

        gevent.config.track_greenlet_tree = False  # a debugging aid keeping spawners' frames
        self.wsgi_handler = TimeoutHandler
        self.server_class = DetachingServer  # a detached websocket's reader closes it
        engineio.install()
        geventwebsocket.install()
        install_sendall()
