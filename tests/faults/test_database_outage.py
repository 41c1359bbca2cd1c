"""Scenario 3: MariaDB stopped for 10 s under load, then started again.

"Stopped" is played by a TCP proxy in the test process between the servers and MariaDB
(``proxy.TcpProxy``): it refuses new connections and closes the open ones the way a database
shutting down does (a request already received is answered, nothing newer is executed). The
shared MariaDB of other people's tests keeps running.

While it is down, every send is refused with 503 / ``service_unavailable`` (never a success
that was not stored) and promptly (no request hangs); ``/health`` says 503 naming the database;
a client connecting then is refused with ``service_unavailable`` rather than accepted without
its replay. When it is back the pools recover by themselves (pre-ping, a fresh connection for
the batch writers), sends succeed again, and every request of the load got an answer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import Rows, wait_until
from tests.faults.conftest import StartServer, newest_id
from tests.faults.load import (
    Fleet,
    Ledger,
    SocketLoad,
    WebhookLoad,
    assert_outage_reported,
    health_is,
    post,
    post_acked,
)
from tests.faults.proxy import TcpProxy
from tests.faults.raw import handshake, refused_as

OUTAGE = 10.0
#: What a stopped database makes the servers log, on purpose.
EXPECTED = [
    r"database unavailable",
    r"could not write \d+ connection log rows",
    r"Exception during reset or similar",  # SQLAlchemy returning a dead connection
]
REFUSALS = {"503 service_unavailable", "ack service_unavailable"}


def test_a_database_outage_refuses_sends_with_503_and_the_pool_recovers_by_itself(
    start_server: StartServer,
    proxied_database_url: str,
    db_proxy: TcpProxy,
    fleet: Fleet,
    ledger: Ledger,
    rows: Rows,
    token: Callable[..., str],
) -> None:
    first = start_server(EXPECTED, DATABASE_URL=proxied_database_url)
    second = start_server(EXPECTED, DATABASE_URL=proxied_database_url)
    fleet.baseline = newest_id(rows)
    tag = uuid.uuid4().hex[:6]
    users = [f"db-{i}-{tag}" for i in range(6)]
    for i, user in enumerate(users):
        fleet.connect(user, first if i % 2 else second)
    sender = fleet.connect(f"db-sender-{tag}", first)
    # Offline during the outage: her pending ones must reach her when she can connect.
    erin = f"db-erin-{tag}"
    for _ in range(2):
        post_acked(ledger, second.url, erin)

    webhooks = WebhookLoad(ledger, [first, second], users, threads=2, interval=0.02)
    events = SocketLoad(ledger, sender, users, interval=0.02)
    try:
        assert wait_until(lambda: len(ledger.acked) >= 80, 15)
        db_proxy.stop()
        stopped_at = time.monotonic()

        assert_outage_reported(second, first, "database")
        assert wait_until(lambda: len(ledger.refused) >= 30, 8), "sends were not refused"
        assert set(ledger.refused.values()) <= REFUSALS, set(ledger.refused.values())
        assert any(v.startswith("ack") for v in ledger.refused.values())
        began = time.monotonic()
        refused = post(first.url, users[0], message := ledger.message())
        answered_in = time.monotonic() - began
        assert refused.status_code == 503 and refused.json()["code"] == "service_unavailable"
        ledger.refuse(message, "503 service_unavailable")
        assert answered_in < 6, answered_in  # a refused connect, not a hung request

        # A handshake cannot replay what erin missed: refused, so her client tries again.
        refusal = handshake(first.url, {"token": token(erin)})
        assert refusal == refused_as("service_unavailable", "service_unavailable"), refusal

        time.sleep(max(0.0, stopped_at + OUTAGE - time.monotonic()))
        acked_before_restart = len(ledger.acked)
        db_proxy.start()
        restarted_at = time.monotonic()

        assert wait_until(lambda: len(ledger.acked) > acked_before_restart + 20, 15)
        sends_after = time.monotonic() - restarted_at
        assert wait_until(lambda: health_is(200, first, second), 10)
        # No worker is stuck: a burst of concurrent sends to each process is answered at once.
        with ThreadPoolExecutor(16) as pool:
            burst = list(
                pool.map(
                    lambda n: (
                        m := ledger.message(),
                        post((first, second)[n % 2].url, users[n % 6], m),
                    ),
                    range(32),
                )
            )
        for message, answer in burst:
            assert answer.status_code == 201, answer.text
            ledger.ack(message, answer.json()["notification"]["id"])
        assert sender.client.connected
        acked_by_socket = len(ledger.acked)
        assert wait_until(lambda: len(ledger.acked) > acked_by_socket + 10, 5)
    finally:
        webhooks.stop()
        events.stop()

    assert not ledger.unanswered, ledger.unanswered  # every request got an answer
    acked = ledger.acked_ids()
    for user in [*users, erin]:
        if user in fleet.sessions:
            fleet.current(user).disconnect()
        fleet.connect(user, second)
    wait_until(lambda: acked <= fleet.delivered(), 10)
    ledger.verify(
        rows("notifications"),
        fleet.delivered(),
        sends_succeed_again_after_s=round(sends_after, 2),
        refused_answer_took_s=round(answered_in, 3),
        proxy_connections=db_proxy.accepted,
    )
