"""Scenario 2: Redis stopped for 10 s under load, then started again (without its data).

The servers use a private ``redis-server`` of this test (``private_redis``), stopped with SIGTERM
as a service manager stops it and started again on the same port, empty (no persistence). The
shared Redis of other people's tests is never touched.

While Redis is down: sends are still stored and acknowledged, a recipient on the sender's own
process still gets them live, one on the other process gets them as ``pending`` (presence falls
back to the process's own sockets), ``/health`` says 503 naming Redis, and the rate limits fail
open (README, "What we guarantee"). When Redis is back the service heals by itself: ``/health``
is 200, cross-process pushes arrive again (the message-queue listener resubscribes, the presence
heartbeat writes its entries again), the limits count again; nothing acknowledged is lost.
"""

from __future__ import annotations

import time
import uuid

import requests

from tests.conftest import Rows, wait_until
from tests.e2e import servers
from tests.faults.conftest import StartServer, newest_id
from tests.faults.load import (
    Fleet,
    Ledger,
    WebhookLoad,
    assert_outage_reported,
    health_is,
    post_acked,
    pushed_across,
)
from tests.faults.private_redis import PrivateRedis

OUTAGE = 10.0
#: What a Redis outage makes the servers log, on purpose: python-socketio's listener and
#: publisher retrying, and the service's own warnings (presence, limits, health).
EXPECTED = [
    r"Cannot (publish to|receive from) redis",
    r"Redis unavailable",
    r"Failed to rate limit. Swallowing error",  # Flask-Limiter failing open
]
LIMIT = 5


def anonymous_calls(server: servers.Server, count: int) -> list[int]:
    """Statuses of ``count`` inbox calls without a token (counted per address)."""
    return [
        requests.get(
            f"{server.url}/api/notifications", headers={"Connection": "close"}, timeout=10
        ).status_code
        for _ in range(count)
    ]


def test_a_redis_outage_delays_but_loses_nothing_and_heals_by_itself(
    start_server: StartServer,
    private_redis: PrivateRedis,
    fleet: Fleet,
    ledger: Ledger,
    rows: Rows,
) -> None:
    settings = {
        "REDIS_URL": private_redis.url,
        "HTTP_RATE_LIMIT_MAX": str(LIMIT),
        "SOCKET_RATE_LIMIT_POINTS": str(LIMIT),
    }
    first = start_server(EXPECTED, **settings)
    second = start_server(EXPECTED, **settings)
    fleet.baseline = newest_id(rows)
    tag = uuid.uuid4().hex[:6]
    users = [f"redis-{i}-{tag}" for i in range(6)]
    for i, user in enumerate(users):
        fleet.connect(user, first if i % 2 else second)
    alice = users[1]  # on first
    carol = f"redis-carol-{tag}"  # sends over her socket on first, to alice on first
    carol_socket = fleet.connect(carol, first)

    # Before: the limits count (through Redis).
    assert anonymous_calls(first, LIMIT + 1)[-1] == 429
    load = WebhookLoad(ledger, [first, second], users, threads=2, interval=0.02)
    try:
        assert wait_until(lambda: len(ledger.acked) >= 60, 15)
        private_redis.stop()
        stopped_at = time.monotonic()

        assert_outage_reported(first, second, "redis")
        acked_at_stop = len(ledger.acked)
        assert wait_until(lambda: len(ledger.acked) >= acked_at_stop + 40, 5), "sends stopped"

        # Local delivery goes on: same process, live.
        local = post_acked(ledger, first.url, alice)
        assert local["status"] == "delivered"
        assert fleet.current(alice).wait_for([local["id"]], 5) == set()
        # A remote recipient is taken as offline: stored pending, replayed later.
        remote = post_acked(ledger, second.url, alice)
        assert remote["status"] == "pending"
        # A socket send is acknowledged too, and the socket limit fails open: more than LIMIT
        # events pass (the counters are unreachable).
        for _ in range(LIMIT + 2):
            message = ledger.message()
            ack = carol_socket.call("send_notification", {"recipientId": alice, "message": message})
            assert ack["success"] is True, ack
            ledger.ack(message, ack["notification"]["id"])
        # The HTTP limit fails open too: over the limit, still answered (401, not 429 or 5xx).
        assert set(anonymous_calls(first, LIMIT + 2)) == {401}
        outage_acked = len(ledger.acked) - acked_at_stop
        outage_refused = len(ledger.refused)

        time.sleep(max(0.0, stopped_at + OUTAGE - time.monotonic()))
        private_redis.start()
        restarted_at = time.monotonic()

        assert wait_until(lambda: health_is(200, first, second), 20)
        healthy_after = time.monotonic() - restarted_at

        # Cross-process pushes resume by themselves: a send on second reaches alice on first.
        assert wait_until(lambda: pushed_across(ledger, fleet, second, alice), 20, interval=0.2)
        across_after = time.monotonic() - restarted_at
        # The limits count again.
        assert anonymous_calls(first, LIMIT + 1)[-1] == 429
        time.sleep(1)
    finally:
        load.stop()

    acked = ledger.acked_ids()
    live = fleet.reconnect_everyone([*users, carol], second, acked)
    assert not ledger.refused, ledger.refused
    ledger.verify(
        rows("notifications"),
        fleet.delivered(),
        acknowledged_during_the_outage=outage_acked,
        refused_during_the_outage=outage_refused,
        delivered_before_the_last_reconnect=live,
        healthy_after_restart_s=round(healthy_after, 2),
        pushes_across_after_restart_s=round(across_after, 2),
    )
