"""Engine.IO sessions before their Socket.IO CONNECT: counted against ``CONNECT_RATE_LIMIT``
when they open, and closed when no CONNECT came within ``CONNECT_TIMEOUT``.

Without this, a session that never sends CONNECT is kept until its client stops answering
pings (for ever, for a client that keeps answering), unauthenticated and uncounted: a cheap
way to hold the server's memory. One sweeper task per process closes them, not a timer or a
greenlet per session: every session gets the same timeout, so their deadlines come in the
order the sessions opened, and each round pops only the ones that are due. It sleeps until the
first deadline (rounds at least ``MAX_ROUND_SECONDS`` apart, so a deadline is kept within that)
and ends when no session waits; the next one starts it again. An idle process's wake-ups count
in the summed CPU of many processes (bench/PROFILE.md, issue 12): a round every second for
sessions that all connected long ago was one of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from flask import Flask

from app.extensions import socketio
from app.patches import engineio
from app.services.rate_limits import count_handshake, socket_limits_of

#: The longest a sweeper round waits; shorter for a short CONNECT_TIMEOUT.
MAX_ROUND_SECONDS = 1.0


class ConnectDeadlines:
    """Engine.IO sessions waiting for their CONNECT, oldest first, and the task closing them."""

    def __init__(self, server: Any, timeout: float) -> None:
        self.server = server
        self.timeout = timeout
        self.waiting: deque[tuple[float, str]] = deque()
        self.started = False
        self.lock = threading.Lock()

    def add(self, eio_sid: str) -> None:
        with self.lock:  # against the sweeper's end (threads in the tests; gevent: no wait)
            self.waiting.append((time.monotonic() + self.timeout, eio_sid))
            if not self.started:
                self.started = True
                self.server.start_background_task(self.sweep_while_waiting)

    def sweep_while_waiting(self) -> None:
        """Rounds until no session waits: each at the first deadline, at least ``pause`` after
        the one before (a deadline added meanwhile is never earlier: one timeout for all)."""
        pause = min(MAX_ROUND_SECONDS, self.timeout / 4)
        delay = pause
        while True:
            self.server.sleep(delay)
            now = time.monotonic()
            try:
                self.sweep(now)
            except Exception:  # the sweeper must outlive any one failure
                logging.getLogger(__name__).exception("CONNECT_TIMEOUT sweep failed")
            with self.lock:
                if not self.waiting:
                    self.started = False
                    return
                delay = max(pause, self.waiting[0][0] - now)

    def sweep(self, now: float) -> None:
        """Close the sessions whose deadline passed without a CONNECT; a CONNECT still being
        handled (its connect handler running) gets another CONNECT_TIMEOUT."""
        while self.waiting and self.waiting[0][0] <= now:
            _, eio_sid = self.waiting.popleft()
            session = self.server.eio.sockets.get(eio_sid)
            if session is None or session.closed:
                continue
            sid = self.server.manager.sid_from_eio_sid(eio_sid, "/")
            if sid is not None and self.server.manager.is_connected(sid, "/"):
                continue
            if sid is not None:  # pre-connected: its handshake is under way
                self.waiting.append((now + self.timeout, eio_sid))
                continue
            address = self.server.environ.get(eio_sid, {}).get("REMOTE_ADDR")
            engineio.end_session(session, "connect_timeout", address, level=logging.INFO)


def install_handshake_guard(app: Flask) -> None:
    """Hook Engine.IO's connect event (after ``socketio.init_app``): the handshake is counted
    when the session opens, its deadline set, and the OPEN packet's intervals made exact."""
    server = socketio.server
    handle_open = server._handle_eio_connect  # python-socketio stores the environ
    limits = socket_limits_of(app)
    deadlines = ConnectDeadlines(server, app.config["CONNECT_TIMEOUT"])

    def on_engineio_open(eio_sid: str, environ: dict[str, Any]) -> None:
        handle_open(eio_sid, environ)
        session = server.eio.sockets.get(eio_sid)
        if session is None:
            return
        engineio.announce_exact_intervals(session)
        deadlines.add(eio_sid)
        count_handshake(limits, environ)

    server.eio.on("connect", on_engineio_open)
