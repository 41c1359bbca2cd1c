"""Stored notifications are matched to the values they were written from, in any order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from app.extensions import db
from app.services import storage
from app.services.validation import NewSend

pytestmark = pytest.mark.integration


def values() -> list[dict[str, Any]]:
    now = datetime(2026, 1, 2, 3, 4, 5, 678000)
    first = storage.row_values(NewSend(("a", "b"), "one", "t", {"k": 1}, batch=True), "s", now)
    second = storage.row_values(NewSend(("a",), "two", "t", None, batch=False), None, now)
    return first + second


def test_insert_returns_each_notification_with_its_own_id(make_app: Callable[..., Any]) -> None:
    app = make_app()
    with app.app_context(), db.engine.begin() as connection:
        stored = storage.insert(connection, values())
        rows = {row.id: row for row in connection.execute(storage.TABLE.select()).all()}
    assert [(n["recipientId"], n["message"]) for n in stored] == [
        ("a", "one"),
        ("b", "one"),
        ("a", "two"),
    ]
    for notification in stored:
        row = rows[notification["id"]]
        assert (row.recipient_id, row.message, row.data) == (
            notification["recipientId"],
            notification["message"],
            notification["data"],
        )
        assert notification["status"] == "pending" and notification["deliveredAt"] is None
        assert notification["createdAt"] == "2026-01-02T03:04:05.678Z"


def test_ids_returned_out_of_order_are_matched_on_content(make_app: Callable[..., Any]) -> None:
    """The fallback when RETURNING does not come back in the order written."""
    app = make_app()
    written = values()
    with app.app_context(), db.engine.begin() as connection:
        stored = storage.insert(connection, written)
        ids = [n["id"] for n in stored]
        assert storage._ids_by_content(connection, written, ids[::-1]) == ids  # noqa: SLF001
