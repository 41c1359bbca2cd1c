"""``flask notifications purge --older-than``: old rows go, in batches; newer ones stay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from app.extensions import db
from app.models import ConnectionEvent, ConnectionLog, IdempotencyKey, Notification, Status, utcnow
from app.services import idempotency
from tests.conftest import Rows, webhook

pytestmark = pytest.mark.integration


def seed(app: Flask, table: type, *ages: timedelta) -> None:
    """One row of ``table`` per age, oldest first (so ids increase with time, as in life)."""
    now = utcnow()
    with app.app_context():
        for number, age in enumerate(sorted(ages, reverse=True)):
            created_at = now - age
            if table is Notification:
                row: Any = Notification(
                    recipient_id="alice",
                    sender_id=None,
                    type="message",
                    message=f"#{number}",
                    status=Status.DELIVERED,
                    created_at=created_at,
                )
            elif table is ConnectionLog:
                row = ConnectionLog(
                    user_id="alice",
                    socket_id=f"sid-{number}",
                    event=ConnectionEvent.CONNECT,
                    created_at=created_at,
                )
            else:
                row = IdempotencyKey(
                    api_key_id="0123456789abcdef",
                    idempotency_key=f"key-{number}",
                    request_hash="0" * 64,
                    response_status=201,
                    response_body=idempotency.encode({"success": True}),
                    created_at=created_at,
                    completed_at=created_at,
                )
            db.session.add(row)
        db.session.commit()
        db.session.remove()


def purge(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["notifications", "purge", *args])


def days(*values: float) -> list[timedelta]:
    return [timedelta(days=value) for value in values]


def test_purge_removes_what_is_older_than_the_cutoff_from_every_table(
    app: Flask, rows: Rows
) -> None:
    seed(app, Notification, *days(400, 120, 91, 89, 1, 0))
    seed(app, ConnectionLog, *days(95, 90.01, 30))
    hours = [timedelta(hours=value) for value in (30, 24.01, 23, 0.1)]
    seed(app, IdempotencyKey, *hours)
    result = purge(app, "--older-than", "90d")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "notifications: removed 3 (older than 90d)",
        "connection_logs: removed 2 (older than 90d)",
        "idempotency_keys: removed 2 (older than 24h)",
    ]
    assert [row["message"] for row in rows("notifications")] == ["#3", "#4", "#5"]
    assert [row["socket_id"] for row in rows("connection_logs")] == ["sid-2"]
    assert [row["idempotency_key"] for row in rows("idempotency_keys")] == ["key-2", "key-3"]


def test_purge_works_through_many_small_batches(app: Flask, rows: Rows) -> None:
    seed(app, Notification, *days(*range(100, 107)), *days(1))
    seed(app, ConnectionLog, *days(*range(100, 105)))
    result = purge(app, "--older-than", "30d", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "notifications: removed 7 (older than 30d)" in result.output
    assert "connection_logs: removed 5 (older than 30d)" in result.output
    assert len(rows("notifications")) == 1 and rows("connection_logs") == []


def test_purge_keeps_the_newest_notification_so_ids_keep_increasing(app: Flask, rows: Rows) -> None:
    seed(app, Notification, *days(200, 150, 100))
    newest = rows("notifications")[-1]["id"]
    result = purge(app, "--older-than", "90d")
    assert "notifications: removed 2 (older than 90d)" in result.output
    assert [row["id"] for row in rows("notifications")] == [newest]
    response = webhook(app.test_client(), {"recipientId": "alice", "message": "new"})
    assert response.get_json()["notification"]["id"] > newest


def test_purge_of_empty_tables_removes_nothing(app: Flask) -> None:
    result = purge(app, "--older-than", "12h")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "notifications: removed 0 (older than 12h)",
        "connection_logs: removed 0 (older than 12h)",
        "idempotency_keys: removed 0 (older than 24h)",
    ]


def test_the_webhooks_own_keys_expire_with_the_purge(app: Flask, rows: Rows) -> None:
    client = app.test_client()
    headers = {"Idempotency-Key": "order-42"}
    assert webhook(client, {"recipientId": "u", "message": "m"}, headers=headers).status_code == 201
    assert "idempotency_keys: removed 0" in purge(app, "--older-than", "90d").output
    assert len(rows("idempotency_keys")) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--older-than", "soon"],
        ["--older-than", "0"],
        ["--older-than", "-5d"],
        ["--older-than", "99999999999d"],
        ["--older-than", "90d", "--batch-size", "0"],
        [],
    ],
    ids=["not a duration", "zero", "negative", "too long", "batch of zero", "missing"],
)
def test_purge_refuses_bad_arguments_and_deletes_nothing(
    app: Flask, rows: Rows, args: list[str]
) -> None:
    seed(app, Notification, *days(400, 300))
    result = purge(app, *args)
    assert result.exit_code == 2, result.output
    assert len(rows("notifications")) == 2
