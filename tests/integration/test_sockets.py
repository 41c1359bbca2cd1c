"""Socket.IO: handshake, send_notification, replay, mark_read, limits, logs and presence."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db, socketio
from app.models import Notification
from app.registry import services
from app.services import replay, storage
from app.services.presence import presence
from tests.conftest import JWT_SECRET, NOTIFICATION_KEYS, Rows, SocketClient, poll, webhook

pytestmark = pytest.mark.integration


def signed(claims: dict[str, Any], key: Any = JWT_SECRET, algorithm: str = "HS256") -> str:
    return pyjwt.encode(claims, key, algorithm=algorithm)


def hs256_by_hand(claims: dict[str, Any], key: bytes) -> str:
    """An HS256 token keyed with any bytes (PyJWT refuses a PEM key: the RS/HS confusion)."""

    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = part(json.dumps(claims).encode())
    mac = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(mac)}"


def send(client: SocketClient, payload: Any) -> dict[str, Any]:
    ack = client.emit("send_notification", payload, callback=True)
    assert isinstance(ack, dict), ack
    return ack


def stored(rows: Rows) -> dict[int, dict[str, Any]]:
    return {row["id"]: row for row in rows("notifications")}


def post(client: FlaskClient, recipient: str, message: str) -> dict[str, Any]:
    response = webhook(client, {"recipientId": recipient, "message": message})
    assert response.status_code == 201, response.get_data(as_text=True)
    notification: dict[str, Any] = response.get_json()["notification"]
    return notification


def errors_logged_here(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Errors logged by the test's own thread, where the test client runs the handlers (other
    tests' apps keep background tasks, such as a Redis listener retrying a closed port)."""
    here = threading.get_ident()
    return [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.thread == here
    ]


def assert_refused(client: SocketClient, message: str, code: str) -> dict[str, Any]:
    error, data = client.refusal()
    assert error == message and data["code"] == code
    return data


# Handshake


def test_a_valid_token_connects_and_the_socket_gets_its_users_pushes(
    connect: Callable[..., SocketClient], client: FlaskClient, rows: Rows
) -> None:
    alice = connect("alice")
    assert alice.is_connected() and alice.connect_error is None and alice.sid
    sent = post(client, "alice", "hi")
    assert sent["status"] == "delivered"
    assert alice.wait_for("new_notification") == [sent]
    assert stored(rows)[sent["id"]]["status"] == "delivered"


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC_PEM = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)

REFUSED_TOKENS = {
    "missing": (None, "token_missing"),
    "blank": ("   ", "token_missing"),
    "bare bearer": ("Bearer ", "token_missing"),
    "not a string": (12345, "token_invalid"),
    "an object": ({"sub": "alice"}, "token_invalid"),
    "garbage": ("not.a.jwt", "token_invalid"),
    "wrong key": (signed({"sub": "alice"}, key="another-secret-" + "y" * 40), "token_invalid"),
    "expired": (signed({"sub": "alice", "exp": int(time.time()) - 3600}), "token_expired"),
    "not yet valid": (signed({"sub": "alice", "nbf": int(time.time()) + 3600}), "token_invalid"),
    "alg none": (signed({"sub": "alice"}, key="", algorithm="none"), "token_invalid"),
    "RS256 signed": (signed({"sub": "alice"}, key=RSA_KEY, algorithm="RS256"), "token_invalid"),
    "HS256 keyed with a public key": (
        hs256_by_hand({"sub": "alice"}, RSA_PUBLIC_PEM),
        "token_invalid",
    ),
    "without sub": (signed({"name": "alice"}), "token_invalid"),
    "bad sub": (signed({"sub": "has space"}), "token_invalid"),
    "too long": ("x" * 9000, "token_invalid"),
}


@pytest.mark.parametrize(("raw", "code"), REFUSED_TOKENS.values(), ids=REFUSED_TOKENS.keys())
def test_the_handshake_is_refused_with_the_token_problem_named(
    connect: Callable[..., SocketClient], rows: Rows, raw: Any, code: str
) -> None:
    refused = connect(None, **({} if raw is None else {"token": raw}))
    assert_refused(refused, "unauthorized", code)
    assert rows("connection_logs") == []


def test_the_handshake_without_any_auth_object_is_refused_as_token_missing(
    app: Flask, rows: Rows
) -> None:
    refused = SocketClient(app, auth=None)  # type: ignore[arg-type]
    assert_refused(refused, "unauthorized", "token_missing")
    assert rows("connection_logs") == []


def test_a_bearer_prefixed_token_is_accepted(
    connect: Callable[..., SocketClient], token: Callable[..., str], rows: Rows
) -> None:
    alice = connect(None, token=f"Bearer {token('alice')}")
    assert alice.is_connected()
    ack = send(alice, {"recipientId": "bob", "message": "hi"})
    assert ack["success"] is True and ack["notification"]["senderId"] == "alice"
    assert [row["sender_id"] for row in rows("notifications")] == ["alice"]


def test_an_integer_sub_is_accepted_as_its_decimal_string(
    connect: Callable[..., SocketClient], rows: Rows
) -> None:
    user = connect(None, token=signed({"sub": 42, "exp": int(time.time()) + 600}))
    assert user.is_connected()
    ack = send(user, {"recipientId": 42, "message": "note to self"})
    assert ack["success"] is True
    assert ack["notification"]["senderId"] == "42" and ack["notification"]["recipientId"] == "42"
    assert user.wait_for("new_notification")[0]["id"] == ack["notification"]["id"]
    assert [(r["sender_id"], r["status"]) for r in rows("notifications")] == [("42", "delivered")]


def test_the_fourth_handshake_from_one_address_within_the_limit_is_refused_rate_limited(
    make_app: Callable[..., Flask], open_socket: Callable[..., SocketClient], rows: Rows
) -> None:
    app = make_app(CONNECT_RATE_LIMIT="3/minute")
    first = [open_socket(app, "alice"), open_socket(app, "alice"), open_socket(app, None)]
    assert [c.is_connected() for c in first] == [True, True, False]  # refused ones count too
    fourth = open_socket(app, "alice")
    data = assert_refused(fourth, "rate_limited", "rate_limited")
    assert isinstance(data["retryAfter"], int) and 0 < data["retryAfter"] <= 60
    assert first[0].is_connected()  # established sockets are not touched
    logs = poll(lambda: rows("connection_logs"), until=lambda found: len(found) >= 2)
    assert sorted(row["socket_id"] for row in logs) == sorted([first[0].sid, first[1].sid])


# send_notification


def test_send_notification_acks_the_stored_notification_sent_by_the_token_user(
    connect: Callable[..., SocketClient], rows: Rows
) -> None:
    alice = connect("alice")
    ack = send(
        alice,
        {"recipientId": "bob", "message": "  Hello  ", "type": "alert", "data": {"orderId": 7}},
    )
    assert set(ack) == {"success", "notification"} and ack["success"] is True
    notification = ack["notification"]
    assert set(notification) == NOTIFICATION_KEYS
    assert notification["senderId"] == "alice" and notification["recipientId"] == "bob"
    assert notification["message"] == "Hello" and notification["type"] == "alert"
    assert notification["data"] == {"orderId": 7} and notification["status"] == "pending"
    assert notification["createdAt"].endswith("Z") and notification["deliveredAt"] is None
    row = stored(rows)[notification["id"]]
    assert (row["sender_id"], row["recipient_id"], row["status"]) == ("alice", "bob", "pending")
    assert row["delivered_at"] is None
    assert alice.events("new_notification") == []  # nobody else's notification reaches alice


def test_a_sender_cannot_choose_another_sender_id(
    connect: Callable[..., SocketClient], rows: Rows
) -> None:
    alice = connect("alice")
    ack = send(alice, {"recipientId": "bob", "message": "hi", "senderId": "mallory"})
    assert ack["success"] is False and ack["code"] == "validation_error"
    assert ack["details"] == {"senderId": "is not an allowed field"}
    assert rows("notifications") == []


def test_every_socket_of_an_online_recipient_gets_it_and_it_is_stored_delivered(
    connect: Callable[..., SocketClient], rows: Rows
) -> None:
    alice, phone, laptop, carol = connect("alice"), connect("bob"), connect("bob"), connect("carol")
    ack = send(alice, {"recipientId": "bob", "message": "hi"})
    assert ack["success"] is True and ack["notification"]["status"] == "delivered"
    assert ack["notification"]["deliveredAt"].endswith("Z")
    for socket in (phone, laptop):
        [pushed] = socket.wait_for("new_notification")
        assert pushed == ack["notification"]
    row = stored(rows)[ack["notification"]["id"]]
    assert row["status"] == "delivered" and row["delivered_at"] is not None
    # A second push is the barrier: had the first gone astray, it would be here by now.
    send(alice, {"recipientId": "carol", "message": "barrier"})
    assert len(carol.wait_for("new_notification")) == 1
    assert alice.events("new_notification") == []


def test_a_notification_to_an_offline_recipient_is_stored_pending_and_pushed_on_connect(
    connect: Callable[..., SocketClient], rows: Rows
) -> None:
    alice = connect("alice")
    ack = send(alice, {"recipientId": "bob", "message": "later"})
    assert ack["notification"]["status"] == "pending"
    assert stored(rows)[ack["notification"]["id"]]["status"] == "pending"
    bob = connect("bob")
    [pushed] = bob.wait_for("new_notification")
    assert pushed["id"] == ack["notification"]["id"] and pushed["status"] == "delivered"
    poll(lambda: stored(rows)[pushed["id"]]["status"], until=lambda status: status == "delivered")


MALFORMED = {
    "none": (None, "body"),
    "string": ("hello", "body"),
    "list": ([{"recipientId": "bob", "message": "hi"}], "body"),
    "number": (42, "body"),
    "missing message": ({"recipientId": "bob"}, "message"),
    "missing recipient": ({"message": "hi"}, "recipientId"),
    "nested junk recipient": ({"recipientId": {"$ne": None}, "message": "hi"}, "recipientId"),
    "nested junk message": ({"recipientId": "bob", "message": ["hi"]}, "message"),
    "blank message": ({"recipientId": "bob", "message": "   "}, "message"),
    "boolean recipient": ({"recipientId": True, "message": "hi"}, "recipientId"),
    "unknown field": ({"recipientID": "bob", "message": "hi"}, "recipientID"),
    "huge message": ({"recipientId": "bob", "message": "x" * 2001}, "message"),
    "bad type": ({"recipientId": "bob", "message": "hi", "type": "Not Valid"}, "type"),
    "data not an object": ({"recipientId": "bob", "message": "hi", "data": [1]}, "data"),
    "data too big": ({"recipientId": "bob", "message": "hi", "data": {"b": "x" * 9000}}, "data"),
}


@pytest.mark.parametrize(("payload", "field"), MALFORMED.values(), ids=MALFORMED.keys())
def test_send_notification_acks_validation_error_for_a_malformed_payload(
    connect: Callable[..., SocketClient],
    rows: Rows,
    caplog: pytest.LogCaptureFixture,
    payload: Any,
    field: str,
) -> None:
    alice = connect("alice")
    ack = send(alice, payload)
    assert ack["success"] is False and ack["code"] == "validation_error"
    assert isinstance(ack["error"], str) and field in ack["details"]
    assert alice.is_connected()
    assert rows("notifications") == []
    assert errors_logged_here(caplog) == []


def test_send_notification_without_any_payload_acks_validation_error(
    connect: Callable[..., SocketClient], rows: Rows
) -> None:
    alice = connect("alice")
    ack = alice.emit("send_notification", callback=True)
    assert ack["success"] is False and ack["code"] == "validation_error"
    assert ack["details"] == {"body": "must be a JSON object"}
    assert alice.is_connected() and rows("notifications") == []


# Replay on connect


def test_pending_notifications_are_replayed_oldest_first_and_become_delivered(
    connect: Callable[..., SocketClient], client: FlaskClient, rows: Rows
) -> None:
    sent = [post(client, "bob", f"n{i}") for i in range(3)]
    other = post(client, "carol", "not for bob")
    bob = connect("bob")
    replayed = bob.wait_for("new_notification", 3)
    assert [n["id"] for n in replayed] == [n["id"] for n in sent]
    assert [n["message"] for n in replayed] == ["n0", "n1", "n2"]
    assert all(n["status"] == "delivered" and n["deliveredAt"] for n in replayed)
    statuses = poll(
        lambda: {i: r["status"] for i, r in stored(rows).items()},
        until=lambda found: [found[n["id"]] for n in sent] == ["delivered"] * 3,
    )
    assert statuses[other["id"]] == "pending"
    # A second socket has nothing pending left to replay.
    again = connect("bob")
    post(client, "bob", "barrier")
    assert [n["message"] for n in again.wait_for("new_notification")] == ["barrier"]


def test_last_id_replays_every_newer_notification_whatever_its_status(
    connect: Callable[..., SocketClient], client: FlaskClient, rows: Rows
) -> None:
    old = post(client, "bob", "old")
    first = connect("bob")
    delivered = post(client, "bob", "delivered")
    first.wait_for("new_notification", 2)
    read_ack = first.emit("mark_read", {"ids": [delivered["id"]]}, callback=True)
    assert read_ack == {"success": True, "updated": 1}
    first.disconnect()
    pending = post(client, "bob", "pending")
    assert {i: r["status"] for i, r in stored(rows).items()} == {
        old["id"]: "delivered",
        delivered["id"]: "read",
        pending["id"]: "pending",
    }
    bob = connect("bob", lastId=old["id"])
    replayed = bob.wait_for("new_notification", 2)
    assert [(n["id"], n["status"]) for n in replayed] == [
        (delivered["id"], "read"),
        (pending["id"], "delivered"),
    ]
    poll(lambda: stored(rows)[pending["id"]]["status"], until=lambda status: status == "delivered")
    assert stored(rows)[delivered["id"]]["status"] == "read"


def test_last_id_as_a_numeric_string_replays_like_the_number(
    connect: Callable[..., SocketClient], client: FlaskClient
) -> None:
    first = connect("bob")
    old, seen = post(client, "bob", "old"), post(client, "bob", "seen")
    first.wait_for("new_notification", 2)
    first.disconnect()
    new = post(client, "bob", "new")
    bob = connect("bob", lastId=f" {old['id']} ")
    assert [n["id"] for n in bob.wait_for("new_notification", 2)] == [seen["id"], new["id"]]
    post(client, "bob", "barrier")
    assert [n["message"] for n in bob.wait_for("new_notification", 3)] == ["seen", "new", "barrier"]


def test_last_id_also_replays_older_notifications_still_pending(
    app: Flask, connect: Callable[..., SocketClient], client: FlaskClient, rows: Rows
) -> None:
    """A row another process stored as pending while bob looked offline to it (a Redis outage)
    is older than what bob's client got live since; reconnecting with lastId must not skip it.
    """
    first = connect("bob")
    with app.app_context():
        left = Notification(recipient_id="bob", message="stored elsewhere", type="message")
        db.session.add(left)
        db.session.commit()
        left_id = left.id
        db.session.remove()
    live = post(client, "bob", "pushed live")
    assert [n["id"] for n in first.wait_for("new_notification")] == [live["id"]]
    first.disconnect()
    bob = connect("bob", lastId=live["id"])
    assert [n["id"] for n in bob.wait_for("new_notification")] == [left_id]
    poll(lambda: stored(rows)[left_id]["status"], until=lambda status: status == "delivered")


@pytest.mark.parametrize("last_id", ["abc", -1, True, 1.5, {"gt": 0}, 2**63])
def test_a_malformed_last_id_falls_back_to_replaying_what_is_pending(
    connect: Callable[..., SocketClient], client: FlaskClient, rows: Rows, last_id: Any
) -> None:
    seen = post(client, "bob", "seen")
    first = connect("bob")
    first.wait_for("new_notification")
    first.disconnect()
    pending = post(client, "bob", "pending")
    bob = connect("bob", lastId=last_id)
    assert bob.is_connected()
    assert [n["id"] for n in bob.wait_for("new_notification")] == [pending["id"]]
    poll(lambda: stored(rows)[pending["id"]]["status"], until=lambda status: status == "delivered")
    post(client, "bob", "barrier")
    assert [n["message"] for n in bob.wait_for("new_notification", 2)] == ["pending", "barrier"]
    assert stored(rows)[seen["id"]]["status"] == "delivered"


def test_replay_stops_at_replay_limit_and_leaves_the_rest_pending(
    make_app: Callable[..., Flask], open_socket: Callable[..., SocketClient], rows: Rows
) -> None:
    app = make_app(REPLAY_LIMIT="2")
    client = app.test_client()
    sent = [post(client, "bob", f"n{i}") for i in range(4)]
    bob = open_socket(app, "bob")
    replayed = bob.wait_for("new_notification", 2)
    assert [n["id"] for n in replayed] == [n["id"] for n in sent[:2]]
    statuses = poll(
        lambda: [stored(rows)[n["id"]]["status"] for n in sent],
        until=lambda found: found[:2] == ["delivered", "delivered"],
    )
    assert statuses == ["delivered", "delivered", "pending", "pending"]
    # The next connection picks up where the limit stopped.
    more = open_socket(app, "bob")
    assert [n["id"] for n in more.wait_for("new_notification", 2)] == [n["id"] for n in sent[2:]]
    assert len(bob.events("new_notification")) == 2


def test_replay_complete_follows_the_replay_and_says_when_it_was_truncated(
    make_app: Callable[..., Flask], open_socket: Callable[..., SocketClient]
) -> None:
    app = make_app(REPLAY_LIMIT="2")
    client = app.test_client()
    sent = [post(client, "bob", f"n{i}") for i in range(3)]
    bob = open_socket(app, "bob")
    [complete] = bob.wait_for("replay_complete")
    assert complete == {"count": 2, "truncated": True, "lastId": sent[1]["id"]}
    names = [pkt["name"] for pkt in bob.history]
    assert names == ["new_notification", "new_notification", "replay_complete"]
    # Exactly REPLAY_LIMIT missed is complete: the extra row read is what tells them apart.
    rest = open_socket(app, "bob", lastId=sent[0]["id"])
    assert rest.wait_for("replay_complete") == [
        {"count": 2, "truncated": False, "lastId": sent[2]["id"]}
    ]
    assert [n["id"] for n in rest.events("new_notification")] == [n["id"] for n in sent[1:]]


def test_a_push_during_the_replay_waits_for_it_so_the_newest_id_seen_is_a_safe_last_id(
    connect: Callable[..., SocketClient],
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A notification stored and pushed live while a connect's replay is being read (the
    socket is already in its room) reaches the socket after the replay and its
    ``replay_complete``: a client that saves the newest id it has seen as ``lastId`` and drops
    mid-replay must not skip the older, replayed ones (tests/e2e/test_cluster.py's reconnect
    race lost one that way)."""
    missed = [post(client, "bob", f"missed {i}") for i in range(2)]
    live: list[dict[str, Any]] = []
    read = storage.missed

    def read_then_a_live_send(*args: Any) -> Any:
        found = read(*args)
        if not live:
            live.append(post(client, "bob", "live"))
        return found

    monkeypatch.setattr(storage, "missed", read_then_a_live_send)
    bob = connect("bob")
    bob.wait_for("new_notification", 3)
    bob.wait_for("replay_complete")
    assert [(pkt["name"], pkt["args"][0].get("id")) for pkt in bob.history] == [
        ("new_notification", missed[0]["id"]),
        ("new_notification", missed[1]["id"]),
        ("replay_complete", None),
        ("new_notification", live[0]["id"]),
    ]
    assert socketio.server.manager.held == {}  # released once sent


def test_replay_complete_with_nothing_missed_gives_back_the_last_id_or_null(
    connect: Callable[..., SocketClient],
) -> None:
    fresh = connect("bob")
    assert fresh.wait_for("replay_complete") == [{"count": 0, "truncated": False, "lastId": None}]
    again = connect("bob", lastId=41)
    assert again.wait_for("replay_complete") == [{"count": 0, "truncated": False, "lastId": 41}]
    assert again.events("new_notification") == []


# mark_read


def test_mark_read_by_ids_changes_only_the_callers_rows_and_tells_their_other_sockets(
    connect: Callable[..., SocketClient], client: FlaskClient, rows: Rows
) -> None:
    mine = [post(client, "alice", f"a{i}") for i in range(3)]
    theirs = post(client, "bob", "b0")
    alice, tablet, bob = connect("alice"), connect("alice"), connect("bob")
    ids = [mine[0]["id"], mine[1]["id"], theirs["id"], 10**12]
    ack = alice.emit("mark_read", {"ids": ids}, callback=True)
    assert ack == {"success": True, "updated": 2}
    assert tablet.wait_for("notification_read") == [{"ids": sorted(ids)}]
    status = {i: (r["status"], r["read_at"] is not None) for i, r in stored(rows).items()}
    assert status[mine[0]["id"]] == status[mine[1]["id"]] == ("read", True)
    assert status[mine[2]["id"]][0] == "delivered"
    assert status[theirs["id"]] == ("delivered", False)
    # Pushes after the read arrive after it: the caller's and bob's sockets got no read event.
    post(client, "alice", "barrier")
    post(client, "bob", "barrier")
    alice.wait_for("new_notification", 4)
    bob.wait_for("new_notification", 2)
    assert alice.events("notification_read") == [] and bob.events("notification_read") == []
    again = alice.emit("mark_read", {"ids": [mine[0]["id"]]}, callback=True)
    assert again == {"success": True, "updated": 0}  # already read


def test_mark_read_all_changes_only_the_callers_rows(
    connect: Callable[..., SocketClient], client: FlaskClient, rows: Rows
) -> None:
    mine = [post(client, "alice", f"a{i}") for i in range(2)]
    theirs = post(client, "bob", "b0")
    alice, tablet = connect("alice"), connect("alice")
    ack = alice.emit("mark_read", {"all": True}, callback=True)
    assert ack == {"success": True, "updated": 2}
    assert tablet.wait_for("notification_read") == [{"all": True}]
    status = {i: r["status"] for i, r in stored(rows).items()}
    assert [status[n["id"]] for n in mine] == ["read", "read"]
    assert status[theirs["id"]] == "pending"


@pytest.mark.parametrize(
    "payload",
    [None, "all", [1], {}, {"ids": []}, {"ids": [0]}, {"ids": ["1"]}, {"ids": [True]},
     {"all": False}, {"all": True, "ids": [1]}, {"ids": [1], "extra": 1}, {"ids": 5}],
)  # fmt: skip
def test_mark_read_acks_validation_error_for_a_malformed_request(
    connect: Callable[..., SocketClient],
    client: FlaskClient,
    rows: Rows,
    caplog: pytest.LogCaptureFixture,
    payload: Any,
) -> None:
    post(client, "alice", "a0")
    alice, tablet = connect("alice"), connect("alice")
    ack = alice.emit("mark_read", payload, callback=True)
    assert ack["success"] is False and ack["code"] == "validation_error" and ack["details"]
    assert alice.is_connected()
    assert [row["status"] for row in rows("notifications")] == ["delivered"]
    post(client, "alice", "barrier")
    assert [n["message"] for n in tablet.wait_for("new_notification")] == ["barrier"]
    assert tablet.events("notification_read") == []
    assert errors_logged_here(caplog) == []


# Limits, logs, presence, pool


def test_socket_events_over_the_per_user_limit_are_acked_rate_limited_on_every_socket(
    make_app: Callable[..., Flask], open_socket: Callable[..., SocketClient], rows: Rows
) -> None:
    app = make_app(SOCKET_RATE_LIMIT_POINTS="3", SOCKET_RATE_LIMIT_DURATION="60")
    phone, laptop = open_socket(app, "alice"), open_socket(app, "alice")
    acks = [
        send(phone, {"recipientId": "bob", "message": "1"}),
        laptop.emit("mark_read", {"all": True}, callback=True),
        send(laptop, {"recipientId": "bob", "message": "3"}),
        send(phone, {"recipientId": "bob", "message": "4"}),
        laptop.emit("mark_read", {"all": True}, callback=True),
    ]
    assert [ack["success"] for ack in acks] == [True, True, True, False, False]
    for limited in acks[3:]:
        assert limited["code"] == "rate_limited" and isinstance(limited["error"], str)
        assert isinstance(limited["retryAfter"], int) and 0 < limited["retryAfter"] <= 60
    assert phone.is_connected() and laptop.is_connected()
    assert [row["message"] for row in rows("notifications")] == ["1", "3"]
    # The limit is per user: bob's own events are not counted against alice's.
    bob = open_socket(app, "bob")
    assert bob.emit("mark_read", {"all": True}, callback=True) == {"success": True, "updated": 2}


def test_each_socket_writes_one_connect_and_one_disconnect_log_row(
    connect: Callable[..., SocketClient], rows: Rows
) -> None:
    phone, laptop = connect("alice"), connect("alice")
    sids = {phone.sid, laptop.sid}
    phone.disconnect()
    laptop.disconnect()
    logs = poll(lambda: rows("connection_logs"), until=lambda found: len(found) >= 4)
    assert len(logs) == 4
    assert {row["user_id"] for row in logs} == {"alice"}
    assert sorted((row["socket_id"], row["event"]) for row in logs) == sorted(
        (sid, event) for sid in sids for event in ("connect", "disconnect")
    )
    for sid in sids:
        connected, left = sorted(
            (row for row in logs if row["socket_id"] == sid), key=lambda row: row["event"]
        )
        assert connected["created_at"] <= left["created_at"]


def test_a_user_stays_online_until_their_last_socket_disconnects(
    connect: Callable[..., SocketClient], client: FlaskClient, rows: Rows
) -> None:
    phone, laptop = connect("bob"), connect("bob")
    phone.disconnect()
    while_online = post(client, "bob", "still here")
    assert while_online["status"] == "delivered"
    assert laptop.wait_for("new_notification") == [while_online]
    laptop.disconnect()
    after = post(client, "bob", "gone")
    assert after["status"] == "pending"
    statuses = {i: r["status"] for i, r in stored(rows).items()}
    assert statuses == {while_online["id"]: "delivered", after["id"]: "pending"}


def test_thirty_events_in_a_row_fit_in_a_pool_of_two_connections(
    make_app: Callable[..., Flask], open_socket: Callable[..., SocketClient], rows: Rows
) -> None:
    app = make_app(DB_POOL_LIMIT="2")
    alice, bob = open_socket(app, "alice"), open_socket(app, "bob")
    started = time.monotonic()
    acks = [send(alice, {"recipientId": "bob", "message": f"m{i}"}) for i in range(30)]
    assert [ack["success"] for ack in acks] == [True] * 30, acks
    assert time.monotonic() - started < 10  # a leaked session would wait out pool_timeout
    assert len(bob.wait_for("new_notification", 30)) == 30
    assert [row["status"] for row in rows("notifications")] == ["delivered"] * 30


UNREACHABLE_DATABASE = "mysql://root@127.0.0.1:1/notify_unreachable"


@pytest.mark.mariadb
def test_a_handshake_during_a_database_outage_is_refused_service_unavailable(
    make_app: Callable[..., Flask], open_socket: Callable[..., SocketClient]
) -> None:
    """Accepted without its replay, the client's next lastId would skip what it missed."""
    app = make_app(DATABASE_URL=UNREACHABLE_DATABASE)
    alice = open_socket(app, "alice")
    assert alice.refusal() == ("service_unavailable", {"code": "service_unavailable"})
    with app.app_context():
        assert presence().online(["alice"]) == set()
    assert socketio.server.manager.held == {}  # no pushes kept for the refused socket


@pytest.mark.mariadb
def test_send_notification_during_a_database_outage_acks_service_unavailable(
    make_app: Callable[..., Flask],
    open_socket: Callable[..., SocketClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(DATABASE_URL=UNREACHABLE_DATABASE)
    # Connected before it: the replay done, the revocations read just before.
    monkeypatch.setattr(replay, "replay", lambda *_args: 0)
    services(app).revocations.read_at = time.monotonic()
    alice = open_socket(app, "alice")
    assert alice.is_connected()
    ack = send(alice, {"recipientId": "bob", "message": "hi"})
    assert ack["success"] is False and ack["code"] == "service_unavailable"
    assert isinstance(ack["error"], str) and "Traceback" not in ack["error"]
    assert alice.is_connected()


def test_a_connect_that_fails_inside_is_refused_not_accepted_half_set_up(
    app: Flask, open_socket: Callable[..., SocketClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("replay exploded")

    monkeypatch.setattr(replay, "replay", broken)
    client = open_socket(app, "alice")
    assert client.refusal() == ("internal_error", {"code": "internal_error"})
    with app.app_context():
        assert presence().online(["alice"]) == set()
    assert socketio.server.manager.held == {}  # no pushes kept for the refused socket


@pytest.mark.parametrize("garbage", ['2["unterminated"', "7", "2{}", "2", '3["no ack'])
def test_a_packet_that_does_not_parse_ends_the_session_and_its_cleanup_at_once(
    connect: Callable[..., SocketClient],
    client: FlaskClient,
    rows: Rows,
    caplog: pytest.LogCaptureFixture,
    garbage: str,
) -> None:
    """The in-process path (no Engine.IO transport): the Socket.IO session ends, its user goes
    offline and its disconnect row is written, with nothing in the log but one warning."""
    alice = connect("alice")
    caplog.clear()
    socketio.server._handle_eio_message(alice.eio_sid, garbage)
    logged = [(r.name, r.levelname) for r in caplog.records if r.levelno >= logging.WARNING]
    assert logged == [("notify.protocol", "WARNING")]
    assert not socketio.server.manager.is_connected(alice.sid, "/")
    assert post(client, "alice", "gone")["status"] == "pending"
    logs = poll(
        lambda: [row for row in rows("connection_logs") if row["socket_id"] == alice.sid],
        until=lambda found: len(found) >= 2,
    )
    assert [row["event"] for row in logs] == ["connect", "disconnect"]
