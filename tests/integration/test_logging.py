"""Request and socket-event log lines: X-Request-ID, their fields, JSON in production, no secret."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.observability.logging import WORKER_ACCESS_LOGGER, JsonFormatter
from app.registry import services
from tests.conftest import API_KEY, OpenSocket, webhook

pytestmark = pytest.mark.integration
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
METRICS_TOKEN = "metrics-token-0123456789abcdef"
SECRET_MESSAGE = "the-secret-message-body-4242"
SECRET_QUERY = "secret-query-value-9191"


def lines_of(caplog: pytest.LogCaptureFixture, logger: str) -> list[dict[str, Any]]:
    """The structured fields of every line ``logger`` wrote."""
    return [r.notify_fields for r in caplog.records if r.name == logger]


def test_a_safe_request_id_is_kept_and_echoed(client: FlaskClient) -> None:
    for given in ("abc-123", "Root=1-5759e988;Parent=53995c3f", "x" * 128):
        response = client.get("/health", headers={"X-Request-ID": given})
        assert response.status_code == 200
        assert response.headers["X-Request-ID"] == given


def test_a_request_id_is_generated_when_missing_or_unsafe(client: FlaskClient) -> None:
    seen = set()
    for headers in ({}, {"X-Request-ID": ""}, {"X-Request-ID": "x" * 129}, {"X-Request-ID": "a b"}):
        response = client.get("/health", headers=headers)
        assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])
        seen.add(response.headers["X-Request-ID"])
    assert len(seen) == 4


def test_error_responses_carry_the_request_id_too(client: FlaskClient) -> None:
    response = webhook(client, {"recipientId": "u", "message": "m"}, key="wrong", headers={})
    assert response.status_code == 401
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])
    missing = client.get("/nowhere", headers={"X-Request-ID": "lost-1"})
    assert missing.status_code == 404 and missing.headers["X-Request-ID"] == "lost-1"


def test_each_request_writes_one_text_line_outside_production(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert not isinstance(services(app).log_formatter, JsonFormatter)
    caplog.set_level(logging.INFO)
    client.get(f"/health?token={SECRET_QUERY}", headers={"X-Request-ID": "req-1"})
    [line] = lines_of(caplog, "notify.requests")
    assert line == {
        "type": "http_request",
        "method": "GET",
        "path": "/health",
        "status": 200,
        "duration_ms": line["duration_ms"],
        "request_id": "req-1",
        "user_id": None,
        "remote_addr": "127.0.0.1",
    }
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    [record] = [r for r in caplog.records if r.name == "notify.requests"]
    text = services(app).log_formatter.format(record)
    assert "GET /health 200" in text and "request_id=req-1" in text
    assert SECRET_QUERY not in caplog.text


def test_the_workers_own_access_line_with_its_query_string_is_off(app: Flask) -> None:
    worker_log = logging.getLogger(WORKER_ACCESS_LOGGER)
    assert not worker_log.isEnabledFor(logging.INFO)
    assert worker_log.isEnabledFor(logging.WARNING)


def test_a_path_cannot_forge_a_second_text_line(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client.get("/x%0A2026-01-01 INFO notify.requests: forged")
    [line] = lines_of(caplog, "notify.requests")
    assert "\n" not in line["path"] and line["status"] == 404


def test_socket_events_write_one_line_per_outcome(
    app: Flask, open_socket: OpenSocket, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    alice = open_socket(app, "alice")
    ok = alice.emit("send_notification", {"recipientId": "bob", "message": "hi"}, callback=True)
    refused = alice.emit("send_notification", {"recipientID": "bob"}, callback=True)
    assert ok["success"] is True and refused["code"] == "validation_error"
    assert alice.emit("mark_read", {"all": True}, callback=True)["success"] is True
    open_socket(app, None)
    alice.disconnect()
    lines = lines_of(caplog, "notify.socket_events")
    assert [(x["event"], x["outcome"], x["user_id"]) for x in lines] == [
        ("connect", "ok", "alice"),
        ("send_notification", "ok", "alice"),
        ("send_notification", "validation_error", "alice"),
        ("mark_read", "ok", "alice"),
        ("connect", "token_missing", None),
        ("disconnect", "ok", "alice"),
    ]
    alice_sids = {x["sid"] for x in lines if x["user_id"] == "alice"}
    assert len(alice_sids) == 1 and None not in alice_sids
    assert all(x["type"] == "socket_event" and x["duration_ms"] >= 0 for x in lines)
    assert all(GENERATED_ID.fullmatch(x["request_id"]) for x in lines)
    assert len({x["request_id"] for x in lines}) == len(lines)


def test_production_lines_are_json_and_hold_no_secret(
    make_app: Callable[..., Flask],
    token: Callable[..., str],
    open_socket: OpenSocket,
    caplog: pytest.LogCaptureFixture,
) -> None:
    production = make_app(APP_ENV="production", MESSAGE_QUEUE="0", METRICS_TOKEN=METRICS_TOKEN)
    formatter = services(production).log_formatter
    assert isinstance(formatter, JsonFormatter)
    client = production.test_client()
    alice_token = token("alice")
    caplog.set_level(logging.INFO)

    body = {"recipientId": "alice", "message": SECRET_MESSAGE}
    assert webhook(client, body, query_string={"apiKey": SECRET_QUERY}).status_code == 201
    assert webhook(client, body | {"apiKey": API_KEY}, key=None).status_code == 201
    assert webhook(client, body, key="wrong-key-that-is-long-enough").status_code == 401
    inbox = client.get(
        "/api/notifications?status=unread",
        headers={"Authorization": f"Bearer {alice_token}", "X-Request-ID": "inbox-1"},
    )
    assert inbox.status_code == 200
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert metrics.status_code == 200
    alice = open_socket(production, "alice")
    sent = alice.emit("send_notification", {"recipientId": "bob", "message": SECRET_MESSAGE})
    assert sent is None  # no ack asked: the outcome still gets its line
    alice.disconnect()

    lines = [formatter.format(record) for record in caplog.records]
    parsed = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in parsed)
    requests = [entry for entry in parsed if entry.get("type") == "http_request"]
    assert [(r["method"], r["path"], r["status"]) for r in requests] == [
        ("POST", "/webhook/notify", 201),
        ("POST", "/webhook/notify", 201),
        ("POST", "/webhook/notify", 401),
        ("GET", "/api/notifications", 200),
        ("GET", "/metrics", 200),
    ]
    assert [r["user_id"] for r in requests] == [None, None, None, "alice", None]
    assert requests[3]["request_id"] == "inbox-1"
    events = [(e["event"], e["outcome"]) for e in parsed if e.get("type") == "socket_event"]
    assert events == [("connect", "ok"), ("send_notification", "ok"), ("disconnect", "ok")]
    everything = "\n".join(lines) + caplog.text
    secrets = [alice_token, API_KEY, METRICS_TOKEN, SECRET_MESSAGE, SECRET_QUERY]
    secrets += ["wrong-key-that-is-long-enough", "Bearer", "Authorization"]
    assert [secret for secret in secrets if secret in everything] == []
