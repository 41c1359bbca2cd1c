"""Scenario 5: 200 sockets that never read, while another user is served normally.

The slow sockets are real Engine.IO websocket sessions (``websocket-client``) of one user with a
tiny receive buffer: they finish the handshake and then never read again, nor answer pings. A
flood of large notifications to that user fills their buffers. Meanwhile a normal client of
another user must get its notifications as fast as before, the server must close the slow
sockets by its ping timeout (``PING_INTERVAL`` + ``PING_TIMEOUT``, 2 + 2 s here), and the
worker's memory (VmRSS) must come back near where it was.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from tests.conftest import wait_until
from tests.e2e import servers
from tests.e2e.clients import webhook_at
from tests.faults.conftest import StartServer, rss_mb, worker_pid
from tests.faults.load import REPORT, Fleet, post
from tests.faults.raw import never_reading

SLOW_SOCKETS = 200
FLOOD = 200
BIG = {"recipientId": "", "message": "x" * 2000, "data": {"blob": "y" * 7000}}


def connected_sockets(server: servers.Server) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("notify_connected_sockets "):
            return float(line.split()[1])
    raise AssertionError("no notify_connected_sockets metric")


def latencies(server: servers.Server, listener: Any, user: str, count: int) -> list[float]:
    """Seconds from sending each webhook to ``user`` until ``listener`` has it."""
    found = []
    for n in range(count):
        began = time.monotonic()
        answer = post(server.url, user, f"latency {n}")
        assert answer.status_code == 201, answer.text
        assert listener.wait_for([answer.json()["notification"]["id"]], 5) == set()
        found.append(time.monotonic() - began)
    return found


def test_two_hundred_sockets_that_never_read_neither_slow_others_nor_hold_memory(
    start_server: StartServer, fleet: Fleet, token: Callable[..., str]
) -> None:
    server = start_server(PING_INTERVAL="2", PING_TIMEOUT="2")
    pid = worker_pid(server)
    tag = uuid.uuid4().hex[:6]
    reader_user, slow_user = f"reader-{tag}", f"slow-{tag}"
    reader = fleet.connect(reader_user, server)
    before = latencies(server, reader, reader_user, 20)
    rss_before = rss_mb(pid)

    slow_token = token(slow_user)
    with ThreadPoolExecutor(20) as pool:
        slow = list(pool.map(lambda _: never_reading(server, slow_token), range(SLOW_SOCKETS)))
    try:
        assert connected_sockets(server) == SLOW_SOCKETS + 1
        began = time.monotonic()
        body = BIG | {"recipientId": slow_user}
        with ThreadPoolExecutor(4) as pool:
            flood = pool.map(
                lambda _: webhook_at(server.url, body, timeout=30).status_code,
                range(FLOOD),
            )
            during = latencies(server, reader, reader_user, 20)
            statuses = list(flood)
        flood_took = time.monotonic() - began
        assert statuses == [201] * FLOOD
        rss_peak = rss_mb(pid)
        # The ping timeout closes every slow socket; the reader stays.
        assert wait_until(lambda: connected_sockets(server) == 1, 15)
        closed_after = time.monotonic() - began
        assert reader.client.connected
        time.sleep(1)
        rss_after = rss_mb(pid)
        after = latencies(server, reader, reader_user, 20)
    finally:
        for ws in slow:
            ws.shutdown()  # the TCP connection only: a close handshake would read
    time.sleep(1)
    rss_released = rss_mb(pid)
    line = (
        f"{SLOW_SOCKETS} never-reading sockets, {FLOOD} notifications of ~9 KB to them: "
        f"reader latency median/max {statistics.median(before) * 1000:.0f}/"
        f"{max(before) * 1000:.0f} ms before, {statistics.median(during) * 1000:.0f}/"
        f"{max(during) * 1000:.0f} ms during, {statistics.median(after) * 1000:.0f}/"
        f"{max(after) * 1000:.0f} ms after; slow sockets closed {closed_after:.1f} s after the "
        f"flood began (flood {flood_took:.1f} s); worker RSS {rss_before:.0f} MB before, "
        f"{rss_peak:.0f} MB after the flood, {rss_after:.0f} MB once they were closed, "
        f"{rss_released:.0f} MB once their clients went away"
    )
    REPORT.append(line)
    print(line)
    assert max(during) < 1.0 and statistics.median(during) < 0.25, line
    assert rss_after - rss_before < 100, line
