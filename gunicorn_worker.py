"""The gunicorn worker: gevent-websocket's own, with the overrides of ``app/patches/``: timeouts
on clients that stall, JSON refusals before the app, and less memory held per idle socket (no
greenlet while it is idle: its connection's server is ``DetachingServer``; see bench/PROFILE.md).

No application imports at module level: gunicorn loads this class in the arbiter, before the
worker's gevent monkey patching; the patches are imported in ``Worker.patch``, after it.
"""

from __future__ import annotations

from typing import Any

import gevent
import gevent.event
from geventwebsocket.gunicorn.workers import GeventWebSocketWorker

#: Seconds between two heartbeats to the arbiter (gunicorn's gevent worker: 1 s). The arbiter
#: kills a worker silent for ``timeout`` (30 s, gunicorn.conf.py); a wake-up a second is one of
#: the idle costs that many processes on one machine pay each (bench/PROFILE.md, issue 12).
HEARTBEAT_SECONDS = 5.0


class Worker(GeventWebSocketWorker):  # type: ignore[misc]
    """``geventwebsocket.gunicorn.workers.GeventWebSocketWorker`` with ``TimeoutHandler`` and
    Engine.IO pings from timers (the behaviour on the wire is the stock worker's), and a
    heartbeat every ``HEARTBEAT_SECONDS``: gunicorn's loop (``while self.alive: self.notify();
    gevent.sleep(1.0)``) waits in ``notify`` for the rest, until a signal ends it (SIGTERM's
    ``handle_exit``, SIGINT/SIGQUIT's ``handle_quit``), so the loop leaves as soon as before."""

    _stopping: gevent.event.Event | None = None

    def notify(self) -> None:
        super().notify()
        if self.alive:  # not in the graceful-shutdown loop, which notifies once a second
            if self._stopping is None:
                self._stopping = gevent.event.Event()
            self._stopping.wait(HEARTBEAT_SECONDS - 1.0)

    def _stop_waiting(self) -> None:
        """Wake ``notify`` (from a signal handler too: through the loop's thread-safe queue)."""
        stopping = self._stopping
        if stopping is not None:
            gevent.get_hub().loop.run_callback_threadsafe(stopping.set)

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        self._stop_waiting()

    def handle_quit(self, sig: int, frame: Any) -> None:
        super().handle_quit(sig, frame)
        self._stop_waiting()

    def run(self) -> None:
        """gunicorn's loop, with the loop-block diagnostic first when ``LOOP_BLOCK_LOG_MS`` is
        set (``app.loop_watch``; off by default)."""
        from app import loop_watch

        loop_watch.install(gevent.sleep, gevent.spawn)
        super().run()

    def patch(self) -> None:
        """After gevent's monkey patching (the worker runs the app after this)."""
        super().patch()
        from app.patches import engineio, geventwebsocket, pymysql
        from app.patches.gevent import DetachingServer, TimeoutHandler, install_sendall

        gevent.config.track_greenlet_tree = False  # a debugging aid keeping spawners' frames
        self.wsgi_handler = TimeoutHandler
        self.server_class = DetachingServer  # a detached websocket's reader closes it
        engineio.install()
        geventwebsocket.install()
        pymysql.install()  # one default TLS context, not one per database connection
        install_sendall()
