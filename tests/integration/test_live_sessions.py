"""Live sessions with the Socket.IO test client: expiry, refresh, revocation and their edges."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.registry import services
from app.services import revocations
from app.services.presence import presence
from app.sockets import live
from tests.conftest import API_KEY, OpenSocket, SocketClient, poll, wait_until, webhook
from tests.integration.test_sockets import signed

pytestmark = pytest.mark.integration
#: The sweeper's resolution and the test client's thread switches: a deadline is kept within.
SLACK = 1.0


@pytest.fixture
def quick(make_app: Callable[..., Flask]) -> Flask:
    """An app with no leeway and the default refresh window (60 s)."""
    return make_app(MESSAGE_QUEUE="0", JWT_LEEWAY="0")


def token_for(user: str, **claims: Any) -> str:
    now = time.time()
    return signed({"sub": user, "iat": int(now)} | claims)


def revoke(client: FlaskClient, body: dict[str, Any], key: str | None = API_KEY) -> Any:
    return client.post("/webhook/revoke", json=body, headers={"X-API-Key": key} if key else {})


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wait_until_ended(socket: SocketClient, deadline: float) -> float:
    """When ``socket`` got disconnected (time.time()), failing past ``deadline``."""
    poll(socket.is_connected, until=lambda on: not on, deadline=deadline - time.time())
    return time.time()


# Expiry


def test_a_socket_is_warned_at_once_then_ended_at_its_tokens_exp(
    quick: Flask, open_socket: OpenSocket
) -> None:
    exp = int(time.time()) + 2
    alice = open_socket(quick, None, token=token_for("alice", exp=exp))
    assert alice.is_connected()
    [warning] = alice.wait_for("token_expiring")
    assert warning == {"expiresAt": live.expires_at_iso(exp)}
    assert warning["expiresAt"].endswith("Z")
    ended_at = wait_until_ended(alice, exp + SLACK)
    assert exp <= ended_at <= exp + SLACK
    assert alice.events("session_ended") == [{"code": "token_expired"}]
    with quick.app_context():
        assert presence().online(["alice"]) == set()
    # Offline at once: what is sent to alice from now on waits for her next connection.
    response = webhook(quick.test_client(), {"recipientId": "alice", "message": "later"})
    assert response.get_json()["notification"]["status"] == "pending"


def test_the_warning_comes_the_refresh_window_before_exp(
    make_app: Callable[..., Flask], open_socket: OpenSocket
) -> None:
    app = make_app(MESSAGE_QUEUE="0", JWT_LEEWAY="0", SESSION_REFRESH_WINDOW="2")
    exp = int(time.time()) + 4
    alice = open_socket(app, None, token=token_for("alice", exp=exp))
    alice.wait_for("replay_complete")
    time.sleep(0.8)
    assert alice.events("token_expiring") == []  # 2 s before exp, not before
    alice.wait_for("token_expiring")
    assert time.time() >= exp - 2
    assert alice.is_connected()


def test_the_leeway_is_granted_after_exp(
    make_app: Callable[..., Flask], open_socket: OpenSocket
) -> None:
    app = make_app(MESSAGE_QUEUE="0", JWT_LEEWAY="2")
    exp = int(time.time()) + 1
    alice = open_socket(app, None, token=token_for("alice", exp=exp))
    ended_at = wait_until_ended(alice, exp + 2 + SLACK)
    assert ended_at >= exp + 2
    assert alice.events("session_ended") == [{"code": "token_expired"}]


def test_a_token_without_exp_is_never_warned_nor_ended(
    quick: Flask, open_socket: OpenSocket
) -> None:
    forever = open_socket(quick, None, token=signed({"sub": "alice"}))
    brief = open_socket(quick, None, token=token_for("alice", exp=int(time.time()) + 1))
    wait_until_ended(brief, time.time() + 1 + SLACK + 1)
    assert forever.is_connected()
    assert forever.events("token_expiring") == [] and forever.events("session_ended") == []
    with quick.app_context():
        assert presence().online(["alice"]) == {"alice"}  # the other socket is still there


# Refresh


def test_a_refresh_moves_the_deadline_and_acks_the_new_expiry(
    quick: Flask, open_socket: OpenSocket
) -> None:
    exp = int(time.time()) + 2
    alice = open_socket(quick, None, token=token_for("alice", exp=exp))
    alice.wait_for("token_expiring")
    later = int(time.time()) + 3600
    ack = alice.emit("refresh_token", {"token": token_for("alice", exp=later)}, callback=True)
    assert ack == {"success": True, "expiresAt": live.expires_at_iso(later)}
    time.sleep(exp - time.time() + SLACK)
    assert alice.is_connected() and alice.events("session_ended") == []
    never = alice.emit("refresh_token", {"token": signed({"sub": "alice"})}, callback=True)
    assert never == {"success": True, "expiresAt": None}


REFUSED = {
    "garbage": ("not.a.jwt", "unauthorized", "token_invalid"),
    "not a string": (42, "unauthorized", "token_invalid"),
    "blank": ("", "unauthorized", "token_invalid"),
    "expired": (signed({"sub": "alice", "exp": 1000}), "unauthorized", "token_expired"),
    "wrong key": (signed({"sub": "alice"}, key="k" * 40), "unauthorized", "token_invalid"),
    "another user": (signed({"sub": "mallory"}), "forbidden", None),
}


@pytest.mark.parametrize(("token", "code", "problem"), REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_refresh_changes_nothing(
    quick: Flask, open_socket: OpenSocket, token: Any, code: str, problem: str | None
) -> None:
    exp = int(time.time()) + 2
    alice = open_socket(quick, None, token=token_for("alice", exp=exp))
    ack = alice.emit("refresh_token", {"token": token}, callback=True)
    assert ack["success"] is False and ack["code"] == code and isinstance(ack["error"], str)
    assert ack.get("details") == ({"token": problem} if problem else None)
    # The old deadline still holds.
    wait_until_ended(alice, exp + SLACK)
    assert alice.events("session_ended") == [{"code": "token_expired"}]


@pytest.mark.parametrize("payload", [None, "token", {"tok": "x"}, {"token": "x", "extra": 1}])
def test_a_malformed_refresh_gets_a_validation_error(
    quick: Flask, open_socket: OpenSocket, payload: Any
) -> None:
    alice = open_socket(quick, None, token=token_for("alice", exp=int(time.time()) + 60))
    ack = alice.emit("refresh_token", payload, callback=True)
    assert ack["success"] is False and ack["code"] == "validation_error" and ack["details"]
    assert alice.is_connected()


def test_a_refresh_counts_against_the_socket_event_limit(
    make_app: Callable[..., Flask], open_socket: OpenSocket
) -> None:
    app = make_app(MESSAGE_QUEUE="0", SOCKET_RATE_LIMIT_POINTS="2")
    alice = open_socket(app, None, token=token_for("alice", exp=int(time.time()) + 60))
    fresh = {"token": token_for("alice", exp=int(time.time()) + 3600)}
    acks = [alice.emit("refresh_token", fresh, callback=True) for _ in range(3)]
    assert [ack["success"] for ack in acks] == [True, True, False]
    assert acks[2]["code"] == "rate_limited" and acks[2]["retryAfter"] >= 1


def test_a_refresh_just_before_the_deadline_keeps_the_socket(
    quick: Flask, open_socket: OpenSocket
) -> None:
    exp = time.time() + 2.0
    alice = open_socket(quick, None, token=token_for("alice", exp=exp))
    time.sleep(max(0.0, exp - time.time() - 0.3))
    fresh = token_for("alice", exp=int(time.time()) + 3600)
    assert alice.emit("refresh_token", {"token": fresh}, callback=True)["success"] is True
    time.sleep(exp - time.time() + SLACK)
    assert alice.is_connected() and alice.events("session_ended") == []


def test_a_refresh_that_loses_the_race_to_the_deadline_does_not_revive_the_session(
    quick: Flask, open_socket: OpenSocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new token checks out, but the deadline passes before the deadline is moved: the
    socket ends as it would have, and the refresh is not acked as a success."""
    exp = time.time() + 1.5
    alice = open_socket(quick, None, token=token_for("alice", exp=exp))
    assert alice.is_connected()
    verify = live.verify

    def slow_verify(raw: object) -> Any:
        claims = verify(raw)
        time.sleep(exp - time.time() + 0.1)  # the deadline passes meanwhile
        return claims

    monkeypatch.setattr(live, "verify", slow_verify)
    fresh = token_for("alice", exp=int(time.time()) + 3600)
    ack = alice.emit("refresh_token", {"token": fresh}, callback=True)
    assert ack["success"] is False
    assert ack["code"] == "unauthorized" and ack["details"] == {"token": "token_expired"}
    wait_until_ended(alice, exp + SLACK + 0.5)
    assert alice.events("session_ended") == [{"code": "token_expired"}]


# Revocation


def test_a_revocation_ends_every_socket_of_the_user_and_refuses_their_tokens(
    quick: Flask, open_socket: OpenSocket
) -> None:
    old = token_for("alice", iat=int(time.time()) - 10)
    phone, laptop = open_socket(quick, None, token=old), open_socket(quick, None, token=old)
    bob = open_socket(quick, "bob")
    client = quick.test_client()
    before = datetime.now(UTC) - timedelta(seconds=5)
    response = revoke(client, {"userId": "alice", "before": iso(before)})
    assert response.status_code == 200
    assert response.get_json() == {"success": True, "disconnected": 2}
    for socket in (phone, laptop):
        assert not socket.is_connected()
        assert socket.events("session_ended") == [{"code": "token_revoked"}]
    assert bob.is_connected() and bob.events("session_ended") == []
    with quick.app_context():
        assert presence().online(["alice", "bob"]) == {"bob"}
    refused = open_socket(quick, None, token=old)
    error, data = refused.refusal()
    assert (error, data["code"]) == ("unauthorized", "token_revoked")
    inbox = client.get("/api/notifications", headers={"Authorization": f"Bearer {old}"})
    assert inbox.status_code == 401
    assert inbox.get_json()["details"] == {"token": "token_revoked"}
    # A token issued after the cut-off works, and cannot be swapped for a revoked one.
    new = token_for("alice")
    again = open_socket(quick, None, token=new)
    assert again.is_connected()
    ack = again.emit("refresh_token", {"token": old}, callback=True)
    assert ack["code"] == "unauthorized" and ack["details"] == {"token": "token_revoked"}
    assert again.is_connected()
    ok = client.get("/api/notifications", headers={"Authorization": f"Bearer {new}"})
    assert ok.status_code == 200
    repeat = revoke(client, {"userId": "alice", "before": iso(before)})
    assert repeat.get_json()["disconnected"] == 0


def test_a_revocation_before_a_future_time_also_refuses_tokens_issued_until_then(
    quick: Flask, open_socket: OpenSocket
) -> None:
    client = quick.test_client()
    alice = open_socket(quick, None, token=token_for("alice"))
    until = datetime.now(UTC) + timedelta(minutes=10)
    response = revoke(client, {"userId": "alice", "before": iso(until)})
    assert response.status_code == 200 and response.get_json()["disconnected"] == 1
    assert alice.events("session_ended") == [{"code": "token_revoked"}]
    issued_after = open_socket(quick, None, token=token_for("alice"))
    assert issued_after.refusal()[1]["code"] == "token_revoked"
    inbox = client.get(
        "/api/notifications", headers={"Authorization": f"Bearer {token_for('alice')}"}
    )
    assert inbox.status_code == 401 and inbox.get_json()["details"] == {"token": "token_revoked"}


def test_a_token_without_iat_counts_as_issued_at_zero(
    quick: Flask, open_socket: OpenSocket
) -> None:
    no_iat = signed({"sub": "alice"})
    socket = open_socket(quick, None, token=no_iat)
    epoch = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert revoke(quick.test_client(), {"userId": "alice", "before": iso(epoch)}).get_json() == {
        "success": True,
        "disconnected": 1,
    }
    assert socket.events("session_ended") == [{"code": "token_revoked"}]


BAD_REVOCATIONS = {
    "no user": ({}, "userId"),
    "bad user": ({"userId": "has space"}, "userId"),
    "before not a time": ({"userId": "alice", "before": "yesterday"}, "before"),
    "before without a zone": ({"userId": "alice", "before": "2026-12-01T10:00:00"}, "before"),
    "before a number": ({"userId": "alice", "before": 1700000000}, "before"),
    "unknown field": ({"userId": "alice", "until": "x"}, "until"),
}


@pytest.mark.parametrize(("body", "field"), BAD_REVOCATIONS.values(), ids=BAD_REVOCATIONS.keys())
def test_a_bad_revocation_is_refused_naming_the_field_and_stores_nothing(
    client: FlaskClient, rows: Callable[[str], list[dict[str, Any]]], body: Any, field: str
) -> None:
    response = revoke(client, body)
    assert response.status_code == 400
    assert response.get_json()["code"] == "validation_error"
    assert field in response.get_json()["details"]
    assert rows("revocations") == []


def test_a_revocation_needs_the_webhook_key(
    client: FlaskClient, rows: Callable[[str], list[dict[str, Any]]]
) -> None:
    for key in (None, "wrong-key-" + "x" * 30):
        response = revoke(client, {"userId": "alice"}, key=key)
        assert response.status_code == 401 and response.get_json()["code"] == "unauthorized"
    assert rows("revocations") == []
    stored = revoke(client, {"userId": "alice", "apiKey": API_KEY}, key=None)
    assert stored.status_code == 200
    [row] = rows("revocations")
    assert row["user_id"] == "alice"


def test_a_process_started_after_a_revocation_honours_it(
    make_app: Callable[..., Flask], open_socket: OpenSocket
) -> None:
    old = token_for("alice", iat=int(time.time()) - 10)
    first = make_app(MESSAGE_QUEUE="0")
    assert revoke(first.test_client(), {"userId": "alice"}).status_code == 200
    later = make_app(MESSAGE_QUEUE="0")  # a process that was down: an empty cache
    assert services(later).revocations.read_at is None
    assert open_socket(later, None, token=old).refusal()[1]["code"] == "token_revoked"


def test_a_revocation_this_process_was_not_told_of_ends_its_sockets_within_the_refresh(
    make_app: Callable[..., Flask], open_socket: OpenSocket
) -> None:
    """Another process's revocation whose Redis message never came: the sweeper's re-read of
    the database ends the socket within REFRESH_SECONDS."""
    elsewhere = make_app(MESSAGE_QUEUE="0")
    here = make_app(MESSAGE_QUEUE="0")
    alice = open_socket(here, None, token=token_for("alice", iat=int(time.time()) - 10))
    with elsewhere.app_context():
        revocations.store("alice", datetime.now(UTC).replace(tzinfo=None))
    made = time.time()
    wait_until_ended(alice, made + revocations.REFRESH_SECONDS + SLACK)
    assert alice.events("session_ended") == [{"code": "token_revoked"}]


@pytest.mark.mariadb
def test_with_the_revocations_unreadable_the_inbox_answers_503_not_an_error(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(MESSAGE_QUEUE="0", DATABASE_URL="mysql://root@127.0.0.1:1/notify_unreachable")
    response = app.test_client().get(
        "/api/notifications", headers={"Authorization": f"Bearer {token_for('alice')}"}
    )
    assert response.status_code == 503
    assert response.get_json()["code"] == "service_unavailable"
    assert not [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]


# The sweeper's wake-ups


def test_the_sweeper_sleeps_until_a_deadline_or_a_reread_is_due(
    quick: Flask, open_socket: OpenSocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sockets whose tokens last an hour: one round per revocation re-read, not one per
    RESOLUTION; a token that expires soon, tracked meanwhile, wakes the sleeping sweeper."""
    rounds: list[float] = []
    original = live.LiveSessions._sweep_once
    with quick.app_context():
        mine = live.live_sessions()

    def counted(self: live.LiveSessions, now: float) -> None:
        if self is mine:  # not the sweepers of earlier tests' apps
            rounds.append(now)
        original(self, now)

    monkeypatch.setattr(live.LiveSessions, "_sweep_once", counted)
    monkeypatch.setattr(revocations, "REFRESH_SECONDS", 3.0)
    open_socket(quick, None, token=token_for("alice", exp=int(time.time()) + 3600))
    time.sleep(2.0)
    assert len(rounds) == 1, rounds  # the first round at once, the next at the re-read (3 s)
    exp = int(time.time()) + 1
    bob = open_socket(quick, None, token=token_for("bob", exp=exp))
    ended_at = wait_until_ended(bob, exp + SLACK)
    assert exp <= ended_at <= exp + SLACK
    assert rounds[1] < rounds[0] + 3.0  # woken before the re-read was due


def test_the_sweeper_ends_as_soon_as_the_last_socket_leaves(
    quick: Flask, open_socket: OpenSocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweeper asleep until an hour-long token's re-read must not outlive the process's last
    socket (a thrown-away app's sweeper would wake later and open a database connection)."""
    monkeypatch.setattr(revocations, "REFRESH_SECONDS", 30.0)
    sessions = services(quick).live_sessions
    alice = open_socket(quick, None, token=token_for("alice", exp=int(time.time()) + 3600))
    assert wait_until(lambda: sessions._sweeping, 2.0)
    time.sleep(0.5)  # asleep now, planned to wake at the re-read
    alice.disconnect()
    assert wait_until(lambda: not sessions._sweeping, 1.0), "the sweeper still runs"
