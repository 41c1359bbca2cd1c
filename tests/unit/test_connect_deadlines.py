"""The CONNECT_TIMEOUT sweeper (``app.sockets.handshakes.ConnectDeadlines``): a session without
a Socket.IO CONNECT is still ended at its deadline, and the sweeper wakes only while sessions
wait for one, not once a second for ever."""

from __future__ import annotations

import time
from typing import Any

import gevent
import pytest

from app.sockets.handshakes import ConnectDeadlines

pytestmark = pytest.mark.unit

TIMEOUT = 0.4  # the sweeper's rounds are then at least 0.1 s apart


class FakeSession:
    def __init__(self, server: FakeServer, sid: str) -> None:
        self.server = server
        self.sid = sid
        self.closed = False
        self.closing = False
        self.closed_at: float | None = None

    def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        self.closed = True
        self.closed_at = time.monotonic()


class FakeServer:
    """What the sweeper uses of python-socketio's server (and of its Engine.IO server)."""

    class reason:  # noqa: N801 - python-engineio's name
        TRANSPORT_ERROR = "transport error"

    def __init__(self) -> None:
        self.wakeups = 0
        self.connected: set[str] = set()
        self.eio = self
        self.manager = self
        self.sockets: dict[str, FakeSession] = {}
        self.environ: dict[str, Any] = {}

    def start_background_task(self, target: Any) -> Any:
        return gevent.spawn(target)

    def sleep(self, seconds: float) -> None:
        gevent.sleep(seconds)
        self.wakeups += 1

    def sid_from_eio_sid(self, eio_sid: str, namespace: str) -> str | None:
        return f"s-{eio_sid}" if eio_sid in self.connected else None

    def is_connected(self, sid: str, namespace: str) -> bool:
        return True

    def open(self, eio_sid: str) -> FakeSession:
        session = self.sockets[eio_sid] = FakeSession(self, eio_sid)
        return session


def test_a_session_without_connect_is_ended_at_its_deadline_and_then_the_sweeper_sleeps() -> None:
    server = FakeServer()
    deadlines = ConnectDeadlines(server, TIMEOUT)
    opened = time.monotonic()
    silent = server.open("silent")
    deadlines.add("silent")
    for n in range(100):  # a burst that all CONNECT at once
        server.open(f"e{n}")
        server.connected.add(f"e{n}")
        deadlines.add(f"e{n}")
    gevent.sleep(TIMEOUT + 0.3)
    assert silent.closed_at is not None
    assert TIMEOUT <= silent.closed_at - opened <= TIMEOUT + TIMEOUT / 4 + 0.05
    assert not any(s.closed for sid, s in server.sockets.items() if sid != "silent")
    woke = server.wakeups
    # Upstream of this change: a round every TIMEOUT / 4 s from the first add, for ever.
    assert woke <= 3
    gevent.sleep(0.5)
    assert server.wakeups == woke, "the sweeper woke with no session waiting"
    assert not deadlines.started
    late = server.open("late")  # a new session starts it again
    deadlines.add("late")
    gevent.sleep(TIMEOUT + 0.2)
    assert late.closed
