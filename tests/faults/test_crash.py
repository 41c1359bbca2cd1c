"""Scenario 1: ``kill -9`` of one of two server processes under load.

Webhooks go to both processes (a load balancer's round robin; a refused connection is sent to
the other one) while users' clients receive on both. The killed process's clients notice,
reconnect to the survivor with ``lastId`` (the highest id each has seen) and must miss nothing
that was acknowledged; the killed process's presence entries expire within ``PRESENCE_TTL``.
"""

from __future__ import annotations

import time
import uuid

from tests.conftest import Rows, wait_until
from tests.faults.conftest import FAST, Presence, StartServer, newest_id
from tests.faults.load import Fleet, Ledger, WebhookLoad

TTL = int(FAST["PRESENCE_TTL"])


def test_kill_9_of_one_process_loses_no_acknowledged_notification(
    start_server: StartServer, fleet: Fleet, ledger: Ledger, rows: Rows, presence: Presence
) -> None:
    doomed, survivor = start_server(), start_server()
    fleet.baseline = newest_id(rows)
    users = [f"crash-{i}-{uuid.uuid4().hex[:6]}" for i in range(8)]
    on_doomed, on_survivor = users[:5], users[5:]
    for user in on_doomed:
        fleet.connect(user, doomed)
    for user in on_survivor:
        fleet.connect(user, survivor)
    members = presence.members(on_doomed)
    processes = {member.split("|")[0] for member in members}
    assert len(members) == len(on_doomed) and len(processes) == 1
    (doomed_process,) = processes

    load = WebhookLoad(ledger, [doomed, survivor], users, threads=3, interval=0.01)
    try:
        assert wait_until(lambda: len(ledger.acked) >= 150, 15), "the load did not get going"
        doomed.kill()
        killed_at = time.monotonic()
        acked_at_kill = len(ledger.acked)

        # Its clients see the connection drop, and reconnect through the "balancer".
        assert wait_until(lambda: not any(fleet.current(u).client.connected for u in on_doomed), 5)
        for user in on_doomed:
            fleet.connect(user, survivor)
        reconnected_after = time.monotonic() - killed_at

        assert wait_until(
            lambda: presence.entries_of(on_doomed, doomed_process, live_only=True) == 0, TTL + 3
        )
        expired_after = time.monotonic() - killed_at
        assert expired_after <= TTL + 1.5, expired_after
        # Load goes on through the survivor alone for a while.
        assert wait_until(lambda: len(ledger.acked) >= acked_at_kill + 150, 15)
    finally:
        load.stop()

    acked = ledger.acked_ids()
    live = fleet.reconnect_everyone(users, survivor, acked)
    ledger.verify(
        rows("notifications"),
        fleet.delivered(),
        delivered_before_the_last_reconnect=live,
        duplicates=fleet.duplicates(),
        reconnected_after_s=round(reconnected_after, 2),
        presence_expired_after_s=round(expired_after, 2),
    )
