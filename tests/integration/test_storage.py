"""Stored notifications are matched to the values they were written from, in any order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

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


@pytest.mark.parametrize(
    "picked",
    [[0, 1, 2, 3, 4, 5], [5, 0, 3, 4], [0, 2, 4, 6, 8, 9], [1, 3, 5, 7, 9], [7], [2, 2, 3]],
    ids=["one run", "two runs", "five runs", "single ids", "one id", "repeats"],
)
def test_record_delivered_marks_exactly_the_pending_rows_given(
    make_app: Callable[..., Any], picked: list[int]
) -> None:
    """Whether the ids go as ranges or as a list: the rows given that are pending become
    delivered, a read one among them stays read, and the rows between them are untouched."""
    app = make_app()
    now = datetime(2026, 1, 2, 3, 4, 5)
    send = NewSend(tuple(f"u{n}" for n in range(10)), "m", "t", None, batch=True)
    with app.app_context(), db.engine.begin() as connection:
        ids = [n["id"] for n in storage.insert(connection, storage.row_values(send, None, now))]
        read = ids[picked[-1]]
        connection.execute(
            storage.TABLE.update().where(storage.TABLE.c.id == read).values(status="read")
        )
        storage.record_delivered(connection, [ids[i] for i in picked], now)
        status = dict(
            connection.execute(sa.select(storage.TABLE.c.id, storage.TABLE.c.status)).all()
        )
    expected = {
        ids[i]: "read" if ids[i] == read else "delivered" if i in picked else "pending"
        for i in range(10)
    }
    assert status == expected


def test_id_ranges() -> None:
    assert storage.id_ranges([9, 1, 2, 3, 7, 8, 3, 5]) == [(1, 3), (5, 5), (7, 9)]
    assert storage.id_ranges([]) == []
