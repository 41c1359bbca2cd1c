"""The inbox HTTP API: GET /api/notifications and POST /api/notifications/read."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import Notification, Status, utcnow
from app.services import storage
from tests.conftest import JWT_SECRET, NOTIFICATION_KEYS, Rows, SocketClient, poll, webhook

pytestmark = pytest.mark.integration
Token = Callable[..., str]
INBOX = "/api/notifications"
READ = "/api/notifications/read"
INDEXES = {"ix_notifications_recipient_id", "ix_notifications_recipient_status_id"}


def store(app: Flask, *specs: tuple[str, Status]) -> list[int]:
    """Rows straight into the database, one per ``(recipient, status)``, in order; their ids."""
    now = utcnow()
    with app.app_context():
        created = [
            Notification(
                recipient_id=recipient,
                sender_id=None,
                type="message",
                message=f"{recipient} #{number}",
                status=status,
                created_at=now,
                delivered_at=None if status == Status.PENDING else now,
                read_at=now if status == Status.READ else None,
            )
            for number, (recipient, status) in enumerate(specs)
        ]
        db.session.add_all(created)
        db.session.commit()
        ids = [row.id for row in created]
        db.session.remove()
    return ids


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def inbox(client: FlaskClient, token: str | None, /, **query: Any) -> Any:
    return client.get(INBOX, query_string=query, headers=bearer(token) if token else {})


def read(client: FlaskClient, token: str | None, body: Any) -> Any:
    return client.post(READ, json=body, headers=bearer(token) if token else {})


def page_of(response: Any) -> dict[str, Any]:
    """The body of a successful inbox page, checked against the contract's shape."""
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    assert list(body) == ["success", "notifications", "nextCursor", "unreadCount"]
    assert body["success"] is True
    assert all(set(n) == NOTIFICATION_KEYS for n in body["notifications"])
    return body


def ids_of(body: dict[str, Any]) -> list[int]:
    return [n["id"] for n in body["notifications"]]


def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    assert body["success"] is False and body["code"] == code and isinstance(body["error"], str)
    return body


def status_by_id(rows: Rows) -> dict[int, tuple[str, bool]]:
    return {r["id"]: (r["status"], r["read_at"] is not None) for r in rows("notifications")}


def signed(claims: dict[str, Any], key: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    return pyjwt.encode(claims, key, algorithm=algorithm)


# Reading pages


def test_paging_through_250_notifications_with_before_returns_each_once_newest_first(
    app: Flask, client: FlaskClient, token: Token
) -> None:
    # Interleaved with another user's rows, so a page boundary never lines up with either.
    specs = [("alice", Status.PENDING) if i % 3 else ("bob", Status.PENDING) for i in range(375)]
    ids = store(app, *specs)
    mine = sorted((i for i, (user, _) in zip(ids, specs, strict=True) if user == "alice"))
    assert len(mine) == 250
    alice = token("alice")
    for limit in (100, 37, None):
        seen: list[int] = []
        pages = 0
        cursor: int | None = None
        while True:
            query = {"limit": limit} if limit else {}
            body = page_of(inbox(client, alice, **query, **({"before": cursor} if cursor else {})))
            pages += 1
            assert len(body["notifications"]) == min(limit or 20, 250 - len(seen))
            assert all(n["recipientId"] == "alice" for n in body["notifications"])
            assert body["unreadCount"] == 250
            seen += ids_of(body)
            cursor = body["nextCursor"]
            if cursor is None:
                break
            assert cursor == seen[-1]
        assert seen == mine[::-1]  # every one exactly once, newest first
        assert pages == -(-250 // (limit or 20))


def test_paging_with_after_returns_each_newer_one_once_oldest_first(
    app: Flask, client: FlaskClient, token: Token
) -> None:
    specs = [("alice", Status.PENDING) if i % 3 else ("bob", Status.DELIVERED) for i in range(60)]
    ids = store(app, *specs)
    mine = [i for i, (user, _) in zip(ids, specs, strict=True) if user == "alice"]
    start = mine[4]  # the lastId of a truncated replay: everything after it is wanted
    alice = token("alice")
    seen: list[int] = []
    cursor = start
    while cursor is not None:
        body = page_of(inbox(client, alice, limit=7, after=cursor))
        assert all(n["recipientId"] == "alice" for n in body["notifications"])
        seen += ids_of(body)
        cursor = body["nextCursor"]
        assert cursor is None or cursor == seen[-1]
    assert seen == mine[5:]
    assert ids_of(page_of(inbox(client, alice, limit=3, after=0))) == mine[:3]
    filtered = page_of(inbox(client, token("bob"), after=0, status="pending"))
    assert filtered["notifications"] == [] and filtered["nextCursor"] is None
    between = page_of(inbox(client, alice, after=mine[2], before=mine[6]))
    assert ids_of(between) == mine[3:6] and between["nextCursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"after": "-1"}, "after"),
        ({"after": "x"}, "after"),
        ({"after": "1.5"}, "after"),
    ],
)
def test_a_bad_after_cursor_is_refused_naming_it(
    client: FlaskClient, token: Token, query: dict[str, str], field: str
) -> None:
    body = refused(inbox(client, token("alice"), **query), 400, "validation_error")
    assert field in body["details"]


def test_notifications_arriving_while_paging_neither_repeat_nor_hide_older_ones(
    app: Flask, client: FlaskClient, token: Token
) -> None:
    older = store(app, *[("alice", Status.PENDING)] * 6)
    alice = token("alice")
    first = page_of(inbox(client, alice, limit=3))
    newer = store(app, *[("alice", Status.PENDING)] * 3)
    second = page_of(inbox(client, alice, limit=3, before=first["nextCursor"]))
    assert ids_of(first) + ids_of(second) == older[::-1] and second["nextCursor"] is None
    assert second["unreadCount"] == 9
    assert ids_of(page_of(inbox(client, alice, limit=3))) == newer[::-1]


def test_the_last_page_has_a_null_cursor_even_when_it_is_exactly_full(
    app: Flask, client: FlaskClient, token: Token
) -> None:
    ids = store(app, *[("alice", Status.DELIVERED)] * 4)
    first = page_of(inbox(client, token("alice"), limit=2))
    assert ids_of(first) == [ids[3], ids[2]] and first["nextCursor"] == ids[2]
    last = page_of(inbox(client, token("alice"), limit=2, before=first["nextCursor"]))
    assert ids_of(last) == [ids[1], ids[0]] and last["nextCursor"] is None
    everything = page_of(inbox(client, token("alice"), limit=4))
    assert ids_of(everything) == ids[::-1] and everything["nextCursor"] is None


def test_an_empty_inbox_is_an_empty_page(client: FlaskClient, token: Token) -> None:
    body = page_of(inbox(client, token("nobody")))
    assert body == {"success": True, "notifications": [], "nextCursor": None, "unreadCount": 0}


def test_a_page_carries_the_stored_notifications_in_the_wire_form(
    client: FlaskClient, token: Token, rows: Rows
) -> None:
    sent = webhook(
        client, {"recipientId": "alice", "message": "Hi", "type": "alert", "data": {"k": 1}}
    )
    assert sent.status_code == 201
    body = page_of(inbox(client, token("alice")))
    assert body["notifications"] == [sent.get_json()["notification"]]
    assert [row["id"] for row in rows("notifications")] == ids_of(body)


@pytest.mark.parametrize(("limit", "count"), [(1, 1), (100, 100)])
def test_limit_accepts_its_boundaries(
    app: Flask, client: FlaskClient, token: Token, limit: int, count: int
) -> None:
    ids = store(app, *[("alice", Status.PENDING)] * 101)
    body = page_of(inbox(client, token("alice"), limit=limit))
    assert ids_of(body) == ids[::-1][:count] and body["nextCursor"] == ids[::-1][count - 1]


def test_limit_defaults_to_20(app: Flask, client: FlaskClient, token: Token) -> None:
    ids = store(app, *[("alice", Status.PENDING)] * 21)
    body = page_of(inbox(client, token("alice")))
    assert ids_of(body) == ids[::-1][:20] and body["nextCursor"] == ids[1]


BAD_QUERIES = {
    "limit 0": ({"limit": "0"}, "limit"),
    "limit 101": ({"limit": "101"}, "limit"),
    "limit abc": ({"limit": "abc"}, "limit"),
    "limit negative": ({"limit": "-1"}, "limit"),
    "limit fraction": ({"limit": "1.5"}, "limit"),
    "limit blank": ({"limit": ""}, "limit"),
    "limit padded": ({"limit": " 5"}, "limit"),
    "limit non-ascii digits": ({"limit": "\u0665"}, "limit"),
    "before 0": ({"before": "0"}, "before"),
    "before negative": ({"before": "-5"}, "before"),
    "before abc": ({"before": "abc"}, "before"),
    "before past bigint": ({"before": str(2**63)}, "before"),
    "status unknown": ({"status": "unseen"}, "status"),
    "status upper case": ({"status": "READ"}, "status"),
    "status blank": ({"status": ""}, "status"),
    "limit twice": ({"limit": ["5", "6"]}, "limit"),
    "unknown parameter": ({"cursor": "5"}, "cursor"),
    "token in the query": ({"token": "x"}, "token"),
}


@pytest.mark.parametrize(("query", "name"), BAD_QUERIES.values(), ids=BAD_QUERIES.keys())
def test_a_bad_query_is_refused_naming_the_parameter(
    app: Flask, client: FlaskClient, token: Token, query: dict[str, Any], name: str
) -> None:
    store(app, ("alice", Status.PENDING))
    body = refused(inbox(client, token("alice"), **query), 400, "validation_error")
    assert list(body["details"]) == [name]


def test_every_problem_of_a_query_is_named_at_once(client: FlaskClient, token: Token) -> None:
    response = inbox(client, token("alice"), limit="0", before="x", status="y", sort="id")
    body = refused(response, 400, "validation_error")
    assert set(body["details"]) == {"limit", "before", "status", "sort"}


def test_status_filters_return_only_that_status_and_unread_is_pending_or_delivered(
    app: Flask, client: FlaskClient, token: Token
) -> None:
    statuses = [Status.PENDING, Status.DELIVERED, Status.READ] * 3
    ids = store(app, *[("alice", s) for s in statuses], ("bob", Status.PENDING))
    by_status = {s: [i for i, t in zip(ids, statuses, strict=False) if t == s] for s in Status}
    alice = token("alice")
    for name, wanted in {
        "pending": by_status[Status.PENDING],
        "delivered": by_status[Status.DELIVERED],
        "read": by_status[Status.READ],
        "unread": sorted(by_status[Status.PENDING] + by_status[Status.DELIVERED]),
    }.items():
        body = page_of(inbox(client, alice, status=name))
        assert ids_of(body) == wanted[::-1], name
        assert body["unreadCount"] == 6 and body["nextCursor"] is None
    unread = page_of(inbox(client, alice, status="unread", limit=4))
    assert {n["status"] for n in unread["notifications"]} == {"pending", "delivered"}
    rest = page_of(inbox(client, alice, status="unread", before=unread["nextCursor"]))
    assert ids_of(unread) + ids_of(rest) == ids_of(page_of(inbox(client, alice, status="unread")))


def test_unread_count_counts_every_unread_one_of_the_user_whatever_the_page(
    app: Flask, client: FlaskClient, token: Token, rows: Rows
) -> None:
    ids = store(
        app,
        *[("alice", Status.PENDING)] * 3,
        *[("alice", Status.DELIVERED)] * 2,
        *[("alice", Status.READ)] * 4,
        *[("bob", Status.PENDING)] * 5,
    )
    alice = token("alice")
    assert page_of(inbox(client, alice, limit=1))["unreadCount"] == 5
    assert page_of(inbox(client, alice, status="read"))["unreadCount"] == 5
    assert page_of(inbox(client, alice, before=ids[0]))["unreadCount"] == 5
    assert read(client, alice, {"ids": ids[:2]}).get_json() == {"success": True, "updated": 2}
    assert page_of(inbox(client, alice))["unreadCount"] == 3
    assert read(client, alice, {"all": True}).get_json() == {"success": True, "updated": 3}
    assert page_of(inbox(client, alice))["unreadCount"] == 0
    assert page_of(inbox(client, token("bob")))["unreadCount"] == 5
    assert [r["status"] for r in rows("notifications") if r["recipient_id"] == "bob"] == [
        "pending"
    ] * 5


# Marking read


def test_read_by_ids_marks_only_those_and_counts_only_unread_ones(
    app: Flask, client: FlaskClient, token: Token, rows: Rows
) -> None:
    ids = store(app, ("alice", Status.PENDING), ("alice", Status.DELIVERED), ("alice", Status.READ))
    before = rows("notifications")
    alice = token("alice")
    response = read(client, alice, {"ids": [*ids, 10**12]})
    assert response.status_code == 200
    assert response.get_json() == {"success": True, "updated": 2}  # the read one is not counted
    after = {r["id"]: r for r in rows("notifications")}
    assert [after[i]["status"] for i in ids] == ["read"] * 3
    assert all(after[i]["read_at"] is not None for i in ids)
    assert after[ids[2]]["read_at"] == before[2]["read_at"]  # already read: left alone
    assert read(client, alice, {"ids": ids[:1]}).get_json() == {"success": True, "updated": 0}


def test_read_all_marks_every_unread_one_of_the_caller(
    app: Flask, client: FlaskClient, token: Token, rows: Rows
) -> None:
    store(app, *[("alice", Status.PENDING)] * 3, ("alice", Status.READ), ("bob", Status.PENDING))
    response = read(client, token("alice"), {"all": True})
    assert response.status_code == 200 and response.get_json() == {"success": True, "updated": 3}
    assert [(r["recipient_id"], r["status"]) for r in rows("notifications")] == [
        ("alice", "read")
    ] * 4 + [("bob", "pending")]


MALFORMED_READS = {
    "not an object": ([1], "body"),
    "empty object": ({}, "ids"),
    "empty ids": ({"ids": []}, "ids"),
    "zero id": ({"ids": [0]}, "ids"),
    "string id": ({"ids": ["1"]}, "ids"),
    "boolean id": ({"ids": [True]}, "ids"),
    "ids not a list": ({"ids": 5}, "ids"),
    "too many ids": ({"ids": list(range(1, 1002))}, "ids"),
    "all false": ({"all": False}, "all"),
    "both": ({"all": True, "ids": [1]}, "ids"),
    "unknown field": ({"ids": [1], "idz": [2]}, "idz"),
}


@pytest.mark.parametrize(("body", "field"), MALFORMED_READS.values(), ids=MALFORMED_READS.keys())
def test_a_malformed_read_is_refused_naming_the_field_and_changes_nothing(
    app: Flask, client: FlaskClient, token: Token, rows: Rows, body: Any, field: str
) -> None:
    ids = store(app, ("alice", Status.PENDING))
    answer = refused(read(client, token("alice"), body), 400, "validation_error")
    assert field in answer["details"]
    assert status_by_id(rows) == {ids[0]: ("pending", False)}


def test_a_read_body_that_is_not_json_or_not_declared_json_is_refused(
    app: Flask, client: FlaskClient, token: Token, rows: Rows
) -> None:
    ids = store(app, ("alice", Status.PENDING))
    headers = bearer(token("alice"))
    not_json = client.post(READ, data="{ids:", headers=headers, content_type="application/json")
    refused(not_json, 400, "invalid_json")
    form = client.post(READ, data={"all": "true"}, headers=headers)
    refused(form, 415, "unsupported_media_type")
    assert status_by_id(rows) == {ids[0]: ("pending", False)}


def test_other_methods_are_refused_in_the_contract_shape(client: FlaskClient, token: Token) -> None:
    response = client.delete(INBOX, headers=bearer(token("alice")))
    refused(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]
    refused(client.get(READ, headers=bearer(token("alice"))), 405, "method_not_allowed")


# Isolation between users


def test_a_user_never_sees_or_changes_another_users_notifications(
    app: Flask, client: FlaskClient, token: Token, rows: Rows
) -> None:
    a1, a2, b1, a3, b2, a4 = store(
        app,
        ("alice", Status.PENDING),
        ("alice", Status.PENDING),
        ("bob", Status.PENDING),
        ("alice", Status.DELIVERED),
        ("bob", Status.READ),
        ("alice", Status.PENDING),
    )
    alice_before = {r["id"]: r for r in rows("notifications") if r["recipient_id"] == "alice"}
    bob = token("bob")

    listed = page_of(inbox(client, bob, limit=100))
    assert ids_of(listed) == [b2, b1] and listed["unreadCount"] == 1
    for name, wanted in {"pending": [b1], "delivered": [], "unread": [b1], "read": [b2]}.items():
        assert ids_of(page_of(inbox(client, bob, status=name))) == wanted, name
    # Cursors forged from alice's ids page only through bob's rows.
    forged = page_of(inbox(client, bob, before=a4 + 1, limit=1))
    assert ids_of(forged) == [b2] and forged["nextCursor"] == b2
    forged = page_of(inbox(client, bob, before=a3))
    assert ids_of(forged) == [b1] and forged["nextCursor"] is None
    assert page_of(inbox(client, bob, before=a2))["notifications"] == []

    # Bob's reads of alice's ids touch nothing and say nothing about whether they exist.
    theirs = read(client, bob, {"ids": [a1, a2, a3, a4]})
    missing = read(client, bob, {"ids": [10**12]})
    assert theirs.get_json() == missing.get_json() == {"success": True, "updated": 0}
    assert read(client, bob, {"all": True}).get_json() == {"success": True, "updated": 1}
    alice_after = {r["id"]: r for r in rows("notifications") if r["recipient_id"] == "alice"}
    assert alice_after == alice_before
    assert status_by_id(rows)[b1] == ("read", True)
    alices = page_of(inbox(client, token("alice")))
    assert ids_of(alices) == [a4, a3, a2, a1] and alices["unreadCount"] == 4


# Authentication


REFUSED_TOKENS = {
    "no header": (None, "token_missing"),
    "blank header": ("", "token_missing"),
    "bare bearer": ("Bearer ", "token_missing"),
    "garbage": ("Bearer not.a.jwt", "token_invalid"),
    "basic credentials": ("Basic YWxpY2U6c2VjcmV0", "token_invalid"),
    "wrong key": (f"Bearer {signed({'sub': 'alice'}, key='another-' + 'y' * 40)}", "token_invalid"),
    "expired": (f"Bearer {signed({'sub': 'alice', 'exp': 1})}", "token_expired"),
    "not yet valid": (
        f"Bearer {signed({'sub': 'alice', 'nbf': int(time.time()) + 3600})}",
        "token_invalid",
    ),
    "alg none": (f"Bearer {signed({'sub': 'alice'}, key='', algorithm='none')}", "token_invalid"),
    "without sub": (f"Bearer {signed({'name': 'alice'})}", "token_invalid"),
    "bad sub": (f"Bearer {signed({'sub': 'has space'})}", "token_invalid"),
    "too long": ("Bearer " + "x" * 9000, "token_invalid"),
}
ROUTES = {"list": ("GET", INBOX, None), "read": ("POST", READ, {"all": True})}


@pytest.mark.parametrize("route", ROUTES.values(), ids=ROUTES.keys())
@pytest.mark.parametrize(("header", "problem"), REFUSED_TOKENS.values(), ids=REFUSED_TOKENS.keys())
def test_a_call_without_a_valid_token_is_refused_naming_the_problem(
    app: Flask,
    client: FlaskClient,
    rows: Rows,
    route: tuple[str, str, Any],
    header: str | None,
    problem: str,
) -> None:
    ids = store(app, ("alice", Status.PENDING))
    method, path, body = route
    headers = {} if header is None else {"Authorization": header}
    response = client.open(path, method=method, json=body, headers=headers)
    answer = refused(response, 401, "unauthorized")
    assert set(answer) == {"success", "error", "code", "details"}
    assert answer["details"] == {"token": problem}
    challenge = "Bearer" if problem == "token_missing" else 'Bearer error="invalid_token"'
    assert response.headers["WWW-Authenticate"] == challenge
    assert status_by_id(rows) == {ids[0]: ("pending", False)}


def test_an_integer_sub_reads_the_inbox_of_its_decimal_string(
    app: Flask, client: FlaskClient
) -> None:
    ids = store(app, ("42", Status.PENDING), ("alice", Status.PENDING))
    token = signed({"sub": 42, "exp": int(time.time()) + 600})
    assert ids_of(page_of(inbox(client, token))) == [ids[0]]


def test_the_token_is_checked_before_the_query_or_body(client: FlaskClient) -> None:
    refused(client.get(INBOX, query_string={"limit": "0"}), 401, "unauthorized")
    refused(client.post(READ, data="nope", content_type="text/plain"), 401, "unauthorized")


# Sockets


def test_a_read_through_http_tells_the_users_open_sockets(
    app: Flask,
    client: FlaskClient,
    token: Token,
    rows: Rows,
    connect: Callable[[str], SocketClient],
) -> None:
    ids = store(app, ("alice", Status.PENDING), ("alice", Status.PENDING), ("bob", Status.PENDING))
    phone, other = connect("alice"), connect("bob")
    assert phone.is_connected() and other.is_connected()
    alice = token("alice")

    assert read(client, alice, {"ids": [ids[1], ids[0]]}).get_json()["updated"] == 2
    found = poll(lambda: phone.events("notification_read"), until=bool)
    assert found == [{"ids": [ids[0], ids[1]]}]
    assert read(client, alice, {"all": True}).get_json()["updated"] == 0
    found = poll(lambda: phone.events("notification_read"), until=lambda f: len(f) > 1)
    assert found == [{"ids": [ids[0], ids[1]]}, {"all": True}]
    assert other.events("notification_read") == []
    assert status_by_id(rows)[ids[2]] == ("delivered", False)  # replayed to bob, never read


# Rate limits


def test_each_user_behind_one_address_has_their_own_inbox_budget(
    make_app: Callable[..., Flask], token: Token
) -> None:
    client = make_app(HTTP_RATE_LIMIT_MAX="3").test_client()
    alice, bob = token("alice"), token("bob")
    codes = [inbox(client, alice).status_code for _ in range(3)]
    limited = read(client, alice, {"all": True})  # both inbox routes share one budget
    assert codes == [200, 200, 200]
    body = refused(limited, 429, "rate_limited")
    assert body["retryAfter"] >= 1 and int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Limit"] == "3"
    assert [inbox(client, bob).status_code for _ in range(4)] == [200, 200, 200, 429]
    # Neither user's calls were counted on the address: anonymous callers still have 3.
    assert [inbox(client, None).status_code for _ in range(4)] == [401, 401, 401, 429]


def test_calls_without_a_valid_token_are_limited_per_address(
    make_app: Callable[..., Flask], token: Token
) -> None:
    client = make_app(HTTP_RATE_LIMIT_MAX="2").test_client()
    codes = [
        inbox(client, None).status_code,
        client.get(INBOX, headers={"Authorization": "Bearer forged"}).status_code,
        inbox(client, None).status_code,
    ]
    assert codes == [401, 401, 429]
    limited = refused(client.get(INBOX, headers={"Authorization": "Bearer x"}), 429, "rate_limited")
    assert limited["retryAfter"] >= 1
    assert inbox(client, token("alice")).status_code == 200  # a valid token has its own budget


def test_cors_preflights_allow_the_bearer_header_and_do_not_spend_the_address_budget(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(HTTP_RATE_LIMIT_MAX="2").test_client()
    for path, method in [(INBOX, "GET"), (READ, "POST")] * 3:
        preflight = client.options(
            path,
            headers={
                "Origin": "http://allowed.example",
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == "http://allowed.example"
        allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
        assert {"authorization", "content-type"} <= {h.strip() for h in allowed.split(",")}
    evil = client.options(
        INBOX,
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in evil.headers
    assert [inbox(client, None).status_code for _ in range(3)] == [401, 401, 429]


# Query plans


@pytest.mark.mariadb
def test_a_users_page_and_unread_count_use_an_index_not_a_table_scan(
    app: Flask, rows: Rows
) -> None:
    statuses = [Status.PENDING, Status.DELIVERED, Status.READ]
    ids = store(
        app,
        *[(f"user-{i % 40}", statuses[i % 3]) for i in range(3000)],
        *[("alice", statuses[i % 3]) for i in range(250)],
    )
    with app.app_context():
        db.session.execute(sa.text("ANALYZE TABLE notifications"))
        queries = {
            f"page status={status} before={before}": storage.page_query("alice", 20, before, status)
            for status in (None, *storage.STATUS_FILTERS)
            for before in (None, ids[3100])  # among alice's rows, whatever ids came before
        } | {
            f"catch-up status={status}": storage.page_query("alice", 20, None, status, after=ids[0])
            for status in (None, *storage.STATUS_FILTERS)
        }
        queries["unread count"] = storage.unread_count_query("alice")
        for name, query in queries.items():
            sql = str(
                query.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
            )
            assert "'alice'" in sql, sql
            plan = db.session.execute(sa.text(f"EXPLAIN {sql}")).mappings().all()  # noqa: S608
            assert len(plan) == 1, (name, plan)
            step = plan[0]
            assert step["key"] in INDEXES and step["type"] != "ALL", (name, sql, dict(step))
        db.session.remove()
    assert len(rows("notifications")) == 3250
