"""POST /webhook/notify: authentication, every input rule, errors in the contract's shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import API_KEY, NOTIFICATION_KEYS, Rows, webhook, webhook_raw

pytestmark = pytest.mark.integration


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert body["success"] is False and body["code"] == code and isinstance(body["error"], str)
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_webhook_stores_and_returns_the_notification(client: FlaskClient, rows: Rows) -> None:
    response = webhook(
        client,
        {"recipientId": "user-123", "message": " Hello ", "type": "alert", "data": {"orderId": 7}},
    )
    assert response.status_code == 201
    body = response.get_json()
    notification = body["notification"]
    assert body["success"] is True
    assert set(notification) == NOTIFICATION_KEYS
    assert notification["recipientId"] == "user-123" and notification["senderId"] is None
    assert notification["message"] == "Hello" and notification["type"] == "alert"
    assert notification["data"] == {"orderId": 7} and notification["status"] == "pending"
    assert notification["createdAt"].endswith("Z") and notification["deliveredAt"] is None
    stored = rows("notifications")
    assert [r["id"] for r in stored] == [notification["id"]]
    assert stored[0]["recipient_id"] == "user-123" and stored[0]["status"] == "pending"


def test_webhook_accepts_the_key_in_the_body_like_the_seed(client: FlaskClient, rows: Rows) -> None:
    response = webhook(
        client,
        {"recipientId": "user-123", "message": "System notification", "apiKey": API_KEY},
        key=None,
    )
    assert response.status_code == 201
    assert len(rows("notifications")) == 1


def test_webhook_accepts_every_rotated_key(make_app: Callable[..., Any], rows: Rows) -> None:
    second = "second-rotated-key-0123456789"
    client = make_app(WEBHOOK_API_KEY=f"{API_KEY},{second}").test_client()
    assert webhook(client, {"recipientId": "u", "message": "a"}).status_code == 201
    assert webhook(client, {"recipientId": "u", "message": "b"}, key=second).status_code == 201
    assert len(rows("notifications")) == 2


@pytest.mark.parametrize("key", [None, "", API_KEY[:-1] + "X", API_KEY + "X", "short"])
def test_webhook_refuses_a_wrong_or_missing_key_and_stores_nothing(
    client: FlaskClient, rows: Rows, key: str | None
) -> None:
    assert_error(
        webhook(client, {"recipientId": "u", "message": "m"}, key=key), 401, "unauthorized"
    )
    assert rows("notifications") == []


def test_webhook_ignores_a_key_in_the_query_string(client: FlaskClient, rows: Rows) -> None:
    response = client.post(
        f"/webhook/notify?apiKey={API_KEY}", json={"recipientId": "u", "message": "m"}
    )
    assert_error(response, 401, "unauthorized")
    assert rows("notifications") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "m"}, "recipientId"),
        ({"recipientId": "a b", "message": "m"}, "recipientId"),
        ({"recipientId": "r" * 129, "message": "m"}, "recipientId"),
        ({"recipientId": "u", "message": ""}, "message"),
        ({"recipientId": "u", "message": "m" * 2001}, "message"),
        ({"recipientId": "u", "message": "m", "type": "Bad Type"}, "type"),
        ({"recipientId": "u", "message": "m", "data": "text"}, "data"),
        ({"recipientId": "u", "message": "m", "data": {"x": "y" * 9000}}, "data"),
        ({"recipientID": "u", "message": "m"}, "recipientID"),
    ],
)
def test_webhook_refuses_each_broken_rule_naming_the_field(
    client: FlaskClient, rows: Rows, body: dict[str, Any], field: str
) -> None:
    found = assert_error(webhook(client, body), 400, "validation_error")
    assert field in found["details"]
    assert rows("notifications") == []


@pytest.mark.parametrize("length", [1, 2000])
def test_webhook_accepts_message_length_boundaries(client: FlaskClient, length: int) -> None:
    response = webhook(client, {"recipientId": "u", "message": "é" * length})
    assert response.status_code == 201
    assert len(response.get_json()["notification"]["message"]) == length


@pytest.mark.parametrize("body", [[1, 2], "text", 5, None])
def test_webhook_refuses_a_body_that_is_not_an_object(client: FlaskClient, body: Any) -> None:
    response = webhook_raw(client, json.dumps(body))
    assert assert_error(response, 400, "validation_error")["details"] == {
        "body": "must be a JSON object"
    }


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe{}", b"[" * 5000 + b"]" * 5000, b""])
def test_webhook_answers_invalid_json_in_the_contract_shape(
    client: FlaskClient, rows: Rows, raw: bytes
) -> None:
    response = webhook_raw(client, raw)
    assert_error(response, 400, "invalid_json")
    assert rows("notifications") == []


def test_webhook_refuses_another_content_type(client: FlaskClient) -> None:
    response = webhook_raw(client, "recipientId=u&message=m", "application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_webhook_refuses_an_oversized_body(client: FlaskClient, rows: Rows) -> None:
    body = json.dumps({"recipientId": "u", "message": "m", "data": {"x": "y" * 70000}})
    response = webhook_raw(client, body)
    assert_error(response, 413, "payload_too_large")
    assert rows("notifications") == []


def test_unicode_and_emoji_round_trip_exactly(client: FlaskClient, rows: Rows) -> None:
    message = "Grüße 😀👩‍👩‍👧 — 中文 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u202e"
    response = webhook(client, {"recipientId": "u", "message": message, "data": {"emoji": "🎉"}})
    assert response.status_code == 201
    assert response.get_json()["notification"]["message"] == message
    stored = rows("notifications")[0]
    assert stored["message"] == message
    data = stored["data"] if isinstance(stored["data"], dict) else json.loads(stored["data"])
    assert data == {"emoji": "🎉"}


def test_sql_and_html_are_stored_verbatim(client: FlaskClient, rows: Rows) -> None:
    message = "'); DROP TABLE notifications; -- <script>alert(1)</script> &amp;"
    response = webhook(client, {"recipientId": "u", "message": message})
    assert response.get_json()["notification"]["message"] == message
    assert rows("notifications")[0]["message"] == message


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/webhook/notify", 405, "method_not_allowed"),
        ("get", "/no/such/page", 404, "not_found"),
        ("delete", "/health", 405, "method_not_allowed"),
    ],
)
def test_flask_errors_use_the_contract_shape(
    client: FlaskClient, method: str, path: str, status: int, code: str
) -> None:
    response = getattr(client, method)(path)
    assert_error(response, status, code)
    if status == 405:
        assert "POST" in response.headers["Allow"] or "GET" in response.headers["Allow"]


def test_an_unexpected_error_is_a_500_without_details(make_app: Callable[..., Any]) -> None:
    app = make_app()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    body = assert_error(response, 500, "internal_error")
    assert "secret internals" not in json.dumps(body)
