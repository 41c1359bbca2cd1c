"""POST /webhook/notify with ``recipientIds``: one message to many users in one transaction."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from app import json_texts
from app.services.validation import RECIPIENT_RULE
from tests.conftest import API_KEY, NOTIFICATION_KEYS, Rows, SocketClient, webhook, webhook_raw
from tests.integration.test_sockets import send
from tests.integration.test_webhook import assert_error

pytestmark = pytest.mark.integration


def batch(client: FlaskClient, recipients: Any, **fields: Any) -> Any:
    return webhook(client, {"recipientIds": recipients, "message": "Hello", **fields})


def stored_notifications(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"success", "notifications"} and body["success"] is True
    for notification in body["notifications"]:
        assert set(notification) == NOTIFICATION_KEYS
    found: list[dict[str, Any]] = body["notifications"]
    return found


def test_a_batch_stores_one_notification_per_recipient_in_the_order_given(
    client: FlaskClient, rows: Rows
) -> None:
    response = batch(client, ["carol", 7, "alice"], type="alert", data={"orderId": 7})
    notifications = stored_notifications(response)
    assert [n["recipientId"] for n in notifications] == ["carol", "7", "alice"]
    for notification in notifications:
        assert notification["message"] == "Hello" and notification["type"] == "alert"
        assert notification["data"] == {"orderId": 7} and notification["senderId"] is None
        assert notification["status"] == "pending" and notification["createdAt"].endswith("Z")
    stored = {row["id"]: row for row in rows("notifications")}
    assert sorted(stored) == sorted(n["id"] for n in notifications)
    for notification in notifications:
        row = stored[notification["id"]]
        assert row["recipient_id"] == notification["recipientId"] and row["status"] == "pending"


def test_a_thousand_recipients_are_stored_by_one_request(client: FlaskClient, rows: Rows) -> None:
    recipients = [f"user-{number}" for number in range(1000)]
    notifications = stored_notifications(batch(client, recipients))
    assert [n["recipientId"] for n in notifications] == recipients
    assert len({n["id"] for n in notifications}) == 1000
    stored = rows("notifications")
    assert len(stored) == 1000
    assert {row["recipient_id"] for row in stored} == set(recipients)


def test_a_bad_thousandth_id_rejects_the_whole_batch_and_stores_nothing(
    client: FlaskClient, rows: Rows
) -> None:
    recipients: list[Any] = [f"user-{number}" for number in range(999)] + ["not valid"]
    body = assert_error(batch(client, recipients), 400, "validation_error")
    assert body["details"] == {"recipientIds[999]": RECIPIENT_RULE}
    assert rows("notifications") == []


def test_every_bad_recipient_id_is_named_by_its_index(client: FlaskClient, rows: Rows) -> None:
    recipients = ["ok", "a b", True, 1.5, "ok-2", "", None, {"id": 1}, "r" * 129, 12]
    body = assert_error(batch(client, recipients), 400, "validation_error")
    assert set(body["details"]) == {f"recipientIds[{i}]" for i in (1, 2, 3, 5, 6, 7, 8)}
    assert rows("notifications") == []


@pytest.mark.parametrize(
    "recipients",
    [[], [f"u{number}" for number in range(1001)], "alice", None, 5, {"0": "alice"}],
    ids=["empty", "1001 ids", "a string", "null", "a number", "an object"],
)
def test_a_recipient_list_outside_the_rules_is_refused(
    client: FlaskClient, rows: Rows, recipients: Any
) -> None:
    body = assert_error(batch(client, recipients), 400, "validation_error")
    assert body["details"] == {"recipientIds": "must be a list of 1-1000 recipient ids"}
    assert rows("notifications") == []


def test_recipient_id_and_recipient_ids_together_are_refused(
    client: FlaskClient, rows: Rows
) -> None:
    response = batch(client, ["alice"], recipientId="bob")
    assert "recipientIds" in assert_error(response, 400, "validation_error")["details"]
    assert rows("notifications") == []


def test_neither_recipient_id_nor_recipient_ids_is_refused(client: FlaskClient) -> None:
    response = webhook(client, {"message": "Hello"})
    assert "recipientId" in assert_error(response, 400, "validation_error")["details"]


def test_the_other_fields_of_a_batch_follow_the_rules_too(client: FlaskClient, rows: Rows) -> None:
    response = batch(client, ["alice", "bad id"], message=" ", type="Bad", extra=1)
    details = assert_error(response, 400, "validation_error")["details"]
    assert set(details) == {"recipientIds[1]", "message", "type", "extra"}
    assert rows("notifications") == []


def test_a_repeated_recipient_gets_one_notification_at_its_first_place(
    client: FlaskClient, rows: Rows
) -> None:
    notifications = stored_notifications(batch(client, ["bob", "alice", "bob", 42, "42"]))
    assert [n["recipientId"] for n in notifications] == ["bob", "alice", "42"]
    assert sorted(row["recipient_id"] for row in rows("notifications")) == ["42", "alice", "bob"]


def test_a_batch_accepts_the_key_in_the_body(client: FlaskClient, rows: Rows) -> None:
    response = webhook(
        client, {"recipientIds": ["a", "b"], "message": "m", "apiKey": API_KEY}, key=None
    )
    assert len(stored_notifications(response)) == 2
    assert len(rows("notifications")) == 2


def test_a_batch_is_pushed_to_each_online_recipient_and_kept_for_the_others(
    connect: Callable[..., SocketClient], client: FlaskClient, rows: Rows
) -> None:
    alice, bob = connect("alice"), connect("bob")
    notifications = stored_notifications(batch(client, ["alice", "carol", "bob"]))
    by_recipient = {n["recipientId"]: n for n in notifications}
    assert alice.wait_for("new_notification") == [by_recipient["alice"]]
    assert bob.wait_for("new_notification") == [by_recipient["bob"]]
    assert [n["status"] for n in notifications] == ["delivered", "pending", "delivered"]
    assert by_recipient["alice"]["deliveredAt"] and by_recipient["carol"]["deliveredAt"] is None
    status = {row["recipient_id"]: row["status"] for row in rows("notifications")}
    assert status == {"alice": "delivered", "carol": "pending", "bob": "delivered"}


def test_a_batch_answer_is_flasks_json_text_encoded_once_per_shape(
    connect: Callable[..., SocketClient],
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pending and delivered, non-ASCII and quotes, 1 and 1.0, ids of several digit counts: the
    body is the text Flask's provider writes for the same dict (compact, ASCII escapes, keys in
    order, a newline), with Flask's headers, though the notifications were encoded once."""
    shaped: list[int] = []
    upstream = json_texts.shaped_texts

    def spy(encode: Any, dumps: Any, value_texts: Any, payloads: Any) -> list[str]:
        shaped.append(len(payloads))
        return upstream(encode, dumps, value_texts, payloads)

    monkeypatch.setattr(json_texts, "shaped_texts", spy)
    recipients = [f"u{number}" for number in range(120)]
    for user in recipients[::7]:
        connect(user)
    message = 'héllo "wörld" 😀 \\ </script> \u2028'
    data = {"n": 1, "f": 1.0, "big": 10**20, "list": [None, True, -0.0], "ü": {"q": '"'}}
    response = batch(client, recipients, message=message, data=data)
    raw = response.get_data()
    body = json.loads(raw)
    statuses = {n["status"] for n in body["notifications"]}
    assert response.status_code == 201 and statuses == {"pending", "delivered"}
    assert raw == json.dumps(body, separators=(",", ":")).encode() + b"\n"
    assert raw.isascii() and '"f":1.0' in raw.decode() and '"n":1,' in raw.decode()
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Length"] == str(len(raw))
    single = webhook(client, {"recipientId": "u0", "message": "m"})
    assert [k for k, _ in response.headers] == [k for k, _ in single.headers]
    assert shaped == [120]


def test_a_single_recipient_webhook_still_answers_with_one_notification(
    client: FlaskClient,
) -> None:
    body = webhook(client, {"recipientId": "alice", "message": "m"}).get_json()
    assert set(body) == {"success", "notification"}
    assert body["notification"]["recipientId"] == "alice"


def test_the_socket_send_notification_refuses_recipient_ids(
    connect: Callable[..., SocketClient], rows: Rows
) -> None:
    alice = connect("alice")
    ack = send(alice, {"recipientIds": ["bob", "carol"], "message": "m"})
    assert ack["success"] is False and ack["code"] == "validation_error"
    assert ack["details"]["recipientIds"] == "is not an allowed field"
    assert rows("notifications") == []


def test_the_largest_batch_the_rules_allow_is_stored_whole(client: FlaskClient, rows: Rows) -> None:
    """1000 recipients, the longest message and the largest data, non-ASCII: about 16 MB of
    rows, which must not make one statement exceed MariaDB's packet limit."""
    message = "😀" * 2000
    data = {"text": "é" * 4000}
    recipients = [f"u{number}" for number in range(1000)]
    raw = json.dumps(
        {"recipientIds": recipients, "message": message, "data": data}, ensure_ascii=False
    ).encode()
    assert len(raw) < 64 * 1024
    response = webhook_raw(client, raw)
    notifications = stored_notifications(response)
    assert len(notifications) == 1000 and notifications[-1]["message"] == message
    stored = rows("notifications")
    assert len(stored) == 1000 and {row["message"] for row in stored} == {message}
