"""python-engineio's service task, replaced by one sweep of every socket per period
(``app.patches.engineio.sweep_sockets``): a client that stops answering pings is still closed
in time, and a process with many idle sockets wakes once per period, not once per socket."""

from __future__ import annotations

import time
from typing import Any

import gevent
import gevent.event
import pytest
from engineio.server import Server
from engineio.socket import Socket

from app.patches import engineio as patches

pytestmark = pytest.mark.unit

PING_INTERVAL = 0.2
PING_TIMEOUT = 0.4


class CountingEvent(gevent.event.Event):
    """The service task's stop event, counting the task's waits (its wake-ups)."""

    waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        return bool(super().wait(timeout))


def server_with(sockets: int) -> tuple[Server, list[Socket]]:
    patches.install_protocol_edges()
    server = Server(
        async_mode="gevent",
        ping_interval=PING_INTERVAL,
        ping_timeout=PING_TIMEOUT,
        monitor_clients=False,
        logger=False,
    )
    made = []
    for n in range(sockets):
        s = Socket(server, f"sid{n}")
        s.connected = True
        s.last_ping = None  # answered its last PING; the next one not sent yet
        server.sockets[s.sid] = s
        made.append(s)
    return server, made


def run_service_task(server: Server, seconds: float) -> CountingEvent:
    event = CountingEvent()
    server.create_event = lambda *args, **kwargs: event  # type: ignore[method-assign]
    task = gevent.spawn(server._service_task)
    gevent.sleep(seconds)
    event.set()  # what Server.shutdown does
    task.join(timeout=2)
    assert task.dead
    return event


def test_idle_sockets_wake_the_process_once_per_period_not_once_per_socket() -> None:
    server, sockets = server_with(200)
    checks: dict[str, int] = {}

    def counting(self: Any) -> bool:
        checks[self.sid] = checks.get(self.sid, 0) + 1
        return True

    seconds = 1.2
    original = Socket.check_ping_timeout
    Socket.check_ping_timeout = counting  # type: ignore[method-assign]
    try:
        event = run_service_task(server, seconds)
    finally:
        Socket.check_ping_timeout = original  # type: ignore[method-assign]
    period = patches.sweep_period(server)
    # Upstream: one wait per socket, 200 per PING_TIMEOUT: about 600 here.
    assert event.waits <= seconds / period + 2
    # Every socket still checked at least once per PING_TIMEOUT (upstream's pace).
    assert len(checks) == len(sockets)
    assert min(checks.values()) >= int(seconds / PING_TIMEOUT)


def test_a_client_that_stops_answering_is_closed_within_interval_timeout_and_period() -> None:
    server, (silent, answering) = server_with(2)
    silent.last_ping = time.time()
    pong = time.monotonic()
    silent.schedule_ping()  # its PONG: the next PING in PING_INTERVAL, never answered
    closed_at: list[float] = []

    def answer_pings() -> None:
        while not answering.closed:
            if answering.last_ping:
                answering.schedule_ping()  # a PONG for each PING
            gevent.sleep(0.02)

    def watch() -> None:
        while not silent.closed:
            gevent.sleep(0.01)
        closed_at.append(time.monotonic())

    helpers = [gevent.spawn(answer_pings), gevent.spawn(watch)]
    period = patches.sweep_period(server)
    run_service_task(server, PING_INTERVAL + PING_TIMEOUT + 2 * period + 0.2)
    answering.closed = True
    gevent.joinall(helpers, timeout=1)
    assert closed_at, "the silent socket was never closed"
    assert closed_at[0] - pong <= PING_INTERVAL + PING_TIMEOUT + period + 0.05
    assert closed_at[0] - pong > PING_INTERVAL + PING_TIMEOUT  # not before its timeout
    assert silent.sid not in server.sockets  # the next round removed it
    assert answering.sid in server.sockets
