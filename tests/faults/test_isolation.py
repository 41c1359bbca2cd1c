"""Abuse 9: no door lets alice read, mark or receive bob's notifications, at real processes.

Doors: the inbox API (with cursors and filters aimed at bob's ids), mark-read over HTTP and the
socket, replay with a forged ``lastId``, handshakes carrying room or user fields of their own
choosing (clients never choose rooms), and ids that differ from bob's only by case.
``tests/integration/test_inbox.py`` checks the inbox rules on the test client; here the same
attacks cross two gunicorn processes sharing Redis.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import requests

from tests.conftest import Rows, wait_until
from tests.e2e.clients import Listener
from tests.faults.conftest import StartServer
from tests.faults.load import Fleet, post


def as_user(method: str, url: str, token: str, **kwargs: Any) -> dict[str, Any]:
    """An inbox API call with ``token``; the body of its 200 answer."""
    headers = {"Authorization": f"Bearer {token}"}
    response = requests.request(method, url, headers=headers, timeout=10, **kwargs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def inbox(url: str, token: str, **query: Any) -> dict[str, Any]:
    return as_user("GET", f"{url}/api/notifications", token, params=query)


def read(url: str, token: str, body: dict[str, Any]) -> int:
    updated: int = as_user("POST", f"{url}/api/notifications/read", token, json=body)["updated"]
    return updated


def test_alice_can_neither_read_nor_mark_nor_receive_bobs_notifications(
    start_server: StartServer, fleet: Fleet, rows: Rows, token: Callable[..., str]
) -> None:
    first, second = start_server(), start_server()
    tag = uuid.uuid4().hex[:6]
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    lookalike = f"Bob-{tag}"  # another user: ids compare byte for byte
    mine = [post(first.url, alice, f"alice {n}").json()["notification"]["id"] for n in range(3)]
    bobs = [post(second.url, bob, f"bob {n}").json()["notification"]["id"] for n in range(3)]
    statuses = {r["id"]: r["status"] for r in rows("notifications")}

    # The inbox, whatever the cursor or filter, is alice's own.
    for query in (
        {},
        {"before": max(bobs) + 1},
        {"before": bobs[0]},
        {"status": "pending"},
        {"status": "unread", "limit": 100},
    ):
        page = inbox(first.url, token(alice), **query)
        assert {n["id"] for n in page["notifications"]} <= set(mine), (query, page)
        assert all(n["recipientId"] == alice for n in page["notifications"])
        assert page["unreadCount"] == 3
    assert inbox(second.url, token(lookalike))["notifications"] == []

    # Marking bob's ids: nothing changes, and the answer does not tell they exist.
    assert read(first.url, token(alice), {"ids": bobs}) == 0
    assert read(first.url, token(lookalike), {"all": True}) == 0
    bob_socket = fleet.connect(bob, second)
    reads: list[Any] = []
    bob_socket.client.on("notification_read", reads.append)
    assert bob_socket.wait_for(bobs) == set()  # his pending ones, replayed to him
    statuses = {r["id"]: r["status"] for r in rows("notifications")}

    # Replay with a forged lastId, and a handshake naming bob's room and id: still alice's.
    url = f"{first.url}?userId={bob}&room=user:{bob}&sub={bob}"
    forged = Listener(url, token(alice), last_id=0)
    try:
        extra = fleet.connect(alice, second)  # a second socket of alice, on the other process
        assert forged.wait_for(mine) == set()
        time.sleep(0.3)
        assert {n["id"] for n in forged.received} == set(mine)
        assert forged.call("mark_read", {"ids": bobs}) == {"success": True, "updated": 0}
        assert (
            forged.call(
                "send_notification", {"recipientId": bob, "message": "hi", "senderId": bob}
            )["code"]
            == "validation_error"
        )
        forged.client.emit("join", {"room": f"user:{bob}"})  # no such event: ignored
        # Bob's next notification, sent through either process, reaches bob alone.
        for server in (first, second):
            answer = post(server.url, bob, "for bob only").json()["notification"]
            assert bob_socket.wait_for([answer["id"]]) == set()
        time.sleep(0.5)
        assert {n["recipientId"] for n in forged.received} == {alice}
        assert {n["recipientId"] for n in extra.received} <= {alice}
        assert reads == []  # bob's sockets were told of no read
        assert {r["id"]: r["status"] for r in rows("notifications") if r["id"] in bobs} == {
            i: statuses[i] for i in bobs
        }
    finally:
        forged.disconnect()
    # Alice's own read tells alice's other socket, never bob's.
    alice_reads: list[Any] = []
    extra.client.on("notification_read", alice_reads.append)
    assert read(first.url, token(alice), {"all": True}) == 3
    assert wait_until(lambda: alice_reads == [{"all": True}], 5)
    assert reads == []
