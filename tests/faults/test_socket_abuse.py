"""Abuse 8: hostile Socket.IO clients at real gunicorn processes.

An event flood over the per-user limit from many sockets on two processes; handshakes over the
per-address limit; unknown events; binary payloads; a 1 MB payload (over
``max_http_buffer_size``); connections that never finish their handshake at any layer (TCP,
HTTP headers, Engine.IO, Socket.IO), which timeouts must close.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from tests.conftest import Rows, wait_until
from tests.e2e import servers
from tests.faults.conftest import StartServer, newest_id
from tests.faults.load import Fleet, Ledger, post
from tests.faults.raw import ACCEPTED, closed_by_server, engineio_socket, handshake
from tests.limit_windows import in_one_window

LIMIT = 20


def new_user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def test_an_event_flood_from_many_sockets_of_one_user_is_cut_at_the_shared_limit(
    start_server: StartServer, fleet: Fleet, ledger: Ledger, rows: Rows
) -> None:
    limits = {"SOCKET_RATE_LIMIT_POINTS": str(LIMIT), "SOCKET_RATE_LIMIT_DURATION": "60"}
    first, second = start_server(**limits), start_server(**limits)
    fleet.baseline = newest_id(rows)
    flooder, recipient = new_user("flooder"), new_user("recipient")
    sockets = [fleet.connect(flooder, (first, second)[n % 2]) for n in range(6)]
    listener = fleet.connect(recipient, first)

    def fire(n: int) -> tuple[str, dict[str, Any]]:
        message = ledger.message()
        payload = {"recipientId": recipient, "message": message}
        return message, sockets[n % len(sockets)].call("send_notification", payload)

    in_one_window()
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(fire, range(LIMIT * 3)))
    for message, ack in answers:
        if ack["success"]:
            ledger.ack(message, ack["notification"]["id"])
        else:
            assert ack["code"] == "rate_limited", ack
            assert isinstance(ack["retryAfter"], int) and 1 <= ack["retryAfter"] <= 60, ack
            ledger.refuse(message, "ack rate_limited")
    assert len(ledger.acked) == LIMIT, len(ledger.acked)
    assert all(s.client.connected for s in sockets)  # limited, not disconnected
    # A mark_read counts on the same budget.
    assert sockets[0].call("mark_read", {"all": True})["code"] == "rate_limited"
    assert listener.wait_for(ledger.acked_ids()) == set()
    ledger.verify(rows("notifications"), fleet.delivered(), sockets=len(sockets), processes=2)


def test_handshakes_over_the_per_address_limit_are_refused_on_every_process(
    start_server: StartServer,
    token: Callable[..., str],
) -> None:
    limits = {"CONNECT_RATE_LIMIT": "10/minute"}
    first, second = start_server(**limits), start_server(**limits)
    good = token(new_user("many"))
    in_one_window()
    answers = [handshake((first, second)[n % 2].url, {"token": good}) for n in range(15)]
    assert answers[:10] == [ACCEPTED] * 10, answers
    for answer in answers[10:]:
        assert answer["message"] == "rate_limited" and answer["data"]["code"] == "rate_limited"
        assert 1 <= answer["data"]["retryAfter"] <= 60
    # Bad tokens count too (guessing is slowed), and are refused as rate limited first.
    assert handshake(first.url, {"token": "guess"})["message"] == "rate_limited"


def test_unknown_events_and_binary_payloads_are_answered_or_ignored_without_harm(
    start_server: StartServer, fleet: Fleet, rows: Rows, token: Callable[..., str]
) -> None:
    """Rooms cannot be joined by name, and events named after the life cycle (``connect``
    with another user's token, ``disconnect``) neither re-run the handshake nor end the
    session: the socket stays mallory's, connected, online and out of the victim's room."""
    server = start_server()
    mallory, victim = new_user("mallory"), new_user("victim")
    attacker = fleet.connect(mallory, server)
    target = fleet.connect(victim, server)
    unknown: list[tuple[str, Any]] = [
        ("join", {"room": f"user:{victim}"}),
        ("join_room", f"user:{victim}"),
        ("subscribe", {"userId": victim}),
        ("enter_room", {"room": f"user:{victim}"}),
        ("new_notification", {"id": 1, "recipientId": victim, "message": "fake"}),
        ("notification_read", {"all": True}),
        ("message", "hello"),
        ("x" * 10_000, {}),
    ]
    acks: list[tuple[str, Any]] = []
    for event, payload in unknown:
        attacker.client.emit(event, payload, callback=lambda *a, e=event: acks.append((e, a)))
    life_cycle = [
        ("connect", (0, {"token": token(victim)})),
        ("connect", {"token": token(victim)}),
        ("disconnect", "client namespace disconnect"),
    ]
    for event, payload in life_cycle:
        attacker.client.emit(event, payload, callback=lambda *a, e=event: acks.append((e, a)))
    binary: list[tuple[str, Any]] = [
        ("send_notification", b"\x00\xff\xfe binary"),
        ("send_notification", {"recipientId": victim, "message": b"bytes, not text"}),
        ("send_notification", {"recipientId": victim, "message": "m", "data": {"b": b"\x01"}}),
        ("send_notification", [b"\x00", {"recipientId": victim}]),
        ("mark_read", {"ids": [b"1"]}),
        ("mark_read", b"all"),
    ]
    for event, payload in binary:
        ack = attacker.call(event, payload)
        assert (ack["success"], ack["code"]) == (False, "validation_error"), (payload, ack)
    time.sleep(0.5)
    assert [event for event, _ in acks if event not in {"connect", "disconnect"}] == []
    assert all(answer in ((), (None,)) for _, answer in acks), acks
    assert attacker.client.connected and target.client.connected
    assert rows("notifications") == []
    # Still mallory's socket: her send is hers, and the victim's notification is the victim's.
    ack = attacker.call("send_notification", {"recipientId": victim, "message": "from mallory"})
    assert ack["success"] and ack["notification"]["senderId"] == mallory, ack
    answer = post(server.url, victim, "for the victim only")
    assert answer.status_code == 201, answer.text
    notification = answer.json()["notification"]
    assert notification["status"] == "delivered"
    assert target.wait_for([ack["notification"]["id"], notification["id"]]) == set()
    time.sleep(0.5)
    assert attacker.received == []
    mine = post(server.url, mallory, "for mallory").json()["notification"]
    assert mine["status"] == "delivered"  # still online: the fake disconnect changed nothing
    assert attacker.wait_for([mine["id"]]) == set()


def test_a_1_mb_socket_message_is_refused_by_the_buffer_limit(
    start_server: StartServer, token: Callable[..., str], rows: Rows
) -> None:
    server = start_server()
    user = new_user("big")
    ws = engineio_socket(server)
    ws.send("40" + json.dumps({"token": token(user)}))
    assert ws.recv().startswith("40{")
    huge = {"recipientId": user, "message": "x" * 1_000_000}
    ws.send("42" + json.dumps(["send_notification", huge]))
    dropped = closed_by_server(ws.sock, within=5)
    ws.shutdown()
    assert dropped, "the server kept a connection that sent 1 MB"
    # Over long-polling, the same message is refused with 413.
    base = f"{server.url}/socket.io/?EIO=4&transport=polling"
    sid = json.loads(requests.get(base, timeout=5).text[1:])["sid"]
    url = f"{base}&sid={sid}"
    assert requests.post(url, data="40" + json.dumps({"token": token(user)}), timeout=5).ok
    posted = requests.post(url, data="42" + json.dumps(["send_notification", huge]), timeout=10)
    assert posted.status_code == 413, posted.status_code
    assert rows("notifications") == []
    assert handshake(server.url, {"token": token(user)}) == ACCEPTED


def test_connections_that_never_finish_their_handshake_are_closed_by_timeouts(
    start_server: StartServer, fleet: Fleet, token: Callable[..., str]
) -> None:
    """CLIENT_TIMEOUT (2 s here) closes TCP connections that send nothing or never finish
    their headers; the Engine.IO heartbeat (2 + 2 s) closes sessions that never connect to
    the namespace nor answer a ping. Meanwhile the process serves everyone else."""
    server = start_server(CLIENT_TIMEOUT="2", PING_INTERVAL="2", PING_TIMEOUT="2")
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
    half = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
    for sock in half:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    unfinished = [engineio_socket(server) for _ in range(20)]
    opened = time.monotonic()
    try:
        assert servers.get(server, "/health").status_code == 200
        fleet.connect(new_user("bystander"), server)
        closed = sum(closed_by_server(sock, within=4) for sock in silent + half)
        http_closed_after = time.monotonic() - opened
        assert closed == 100, f"{100 - closed} stalled HTTP connections still open"
        assert http_closed_after < 6, http_closed_after
        closed = sum(closed_by_server(ws.sock, within=8) for ws in unfinished)
        assert closed == 20, f"{20 - closed} unfinished Engine.IO sessions still open"
        assert wait_until(lambda: fleet.current(fleet_user(fleet)).client.connected, 1)
    finally:
        for sock in silent + half:
            sock.close()
        for ws in unfinished:
            ws.shutdown()
    print(f"stalled connections: 100 HTTP closed within {http_closed_after:.1f} s")


def fleet_user(fleet: Fleet) -> str:
    (user,) = fleet.sessions
    return user
