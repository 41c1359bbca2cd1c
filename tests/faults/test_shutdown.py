"""Scenario 4: SIGTERM (a deploy) of one of two processes under load.

The stopping process must finish what it is doing (a webhook whose body is still arriving when
the signal comes gets its 201 and is stored; socket events being handled get their acks, later
ones a ``service_unavailable`` refusal, so nothing is stored unanswered), close its sockets so
that clients reconnect to the other process (with ``lastId``, missing nothing), remove its
presence entries at once (its ``PRESENCE_TTL`` is the default 45 s here, so expiry cannot
explain it) and exit 0.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from typing import Any

from tests.conftest import API_KEY, Rows, wait_until
from tests.e2e import servers
from tests.faults.conftest import Presence, StartServer, newest_id
from tests.faults.load import Fleet, Ledger, SocketLoad, WebhookLoad


class SlowRequest:
    """A webhook sent in two halves over a raw connection: in flight between them."""

    def __init__(self, server: servers.Server, body: dict[str, Any]) -> None:
        self.body = json.dumps(body).encode()
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        head = (
            f"POST /webhook/notify HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: application/json\r\nX-API-Key: {API_KEY}\r\n"
            f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        self.sock.sendall(head + self.body[:10])

    def finish(self) -> tuple[int, dict[str, Any]]:
        self.sock.sendall(self.body[10:])
        answer = b""
        while chunk := self.sock.recv(65536):
            answer += chunk
        self.sock.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(body)


def test_sigterm_under_load_finishes_in_flight_work_and_loses_nothing(
    start_server: StartServer, fleet: Fleet, ledger: Ledger, rows: Rows, presence: Presence
) -> None:
    stopping = start_server(PRESENCE_TTL="45")
    survivor = start_server()
    fleet.baseline = newest_id(rows)
    tag = uuid.uuid4().hex[:6]
    users = [f"term-{i}-{tag}" for i in range(6)]
    on_stopping = users[:4]
    for user in users:
        fleet.connect(user, stopping if user in on_stopping else survivor)
    (process,) = {member.split("|")[0] for member in presence.members(on_stopping)}
    sender = fleet.connect(f"term-sender-{tag}", stopping)

    webhooks = WebhookLoad(ledger, [stopping, survivor], users, threads=2, interval=0.01)
    events = SocketLoad(ledger, sender, users, interval=0.01)
    try:
        assert wait_until(lambda: len(ledger.acked) >= 100, 15)
        in_flight = SlowRequest(stopping, {"recipientId": users[0], "message": ledger.message()})
        time.sleep(0.2)  # accepted and being read by the worker
        stopping.terminate()
        terminated_at = time.monotonic()

        assert wait_until(lambda: presence.entries_of(on_stopping, process) == 0, 2)
        offline_after = time.monotonic() - terminated_at
        assert wait_until(
            lambda: not any(fleet.current(u).client.connected for u in on_stopping), 5
        )
        for user in on_stopping:
            fleet.connect(user, survivor)
        time.sleep(0.5)
        status, body = in_flight.finish()
        assert status == 201, body
        ledger.ack(body["notification"]["message"], body["notification"]["id"])
        assert stopping.wait(10) == 0, stopping.describe()
        exited_after = time.monotonic() - terminated_at
        acked_at_exit = len(ledger.acked)
        assert wait_until(lambda: len(ledger.acked) >= acked_at_exit + 50, 10)
    finally:
        webhooks.stop()
        events.stop()

    acked = ledger.acked_ids()
    live = fleet.reconnect_everyone(users, survivor, acked)
    stored = rows("notifications")
    # Whatever the server took on, it answered: a send without an answer was never stored
    # (its request never got in; events in flight are drained before the sockets close).
    messages = {str(row["message"]) for row in stored}
    assert not messages & ledger.unanswered.keys(), ledger.unanswered
    ledger.verify(
        stored,
        fleet.delivered(),
        delivered_before_the_last_reconnect=live,
        presence_removed_after_s=round(offline_after, 2),
        exited_after_s=round(exited_after, 2),
    )
