"""The two statements of a send, on any connection: store rows as pending, record delivered.

Plain SQLAlchemy Core on the notifications table (no ORM identity map, no per-row objects): the
send path runs them for many notifications at once, see ``services.batching``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.models import Notification, NotificationDict, Status, notification_dict
from app.services.validation import NewSend

TABLE: sa.Table = Notification.__table__
#: Rows per INSERT statement: 100 rows of the longest message and data stay a few MB per
#: statement, well under MariaDB's max_allowed_packet (16 MiB by default).
INSERT_PAGE_SIZE = 100
INSERT = (
    sa.insert(TABLE)
    .returning(*TABLE.c)
    .execution_options(insertmanyvalues_page_size=INSERT_PAGE_SIZE)
)


def row_values(send: NewSend, sender_id: str | None, now: datetime) -> list[dict[str, Any]]:
    """One pending row per recipient of ``send``."""
    return [
        {
            "recipient_id": recipient,
            "sender_id": sender_id,
            "type": send.type,
            "message": send.message,
            "data": send.data,
            "status": Status.PENDING.value,
            "created_at": now,
        }
        for recipient in send.recipient_ids
    ]


def insert(connection: sa.Connection, values: Sequence[dict[str, Any]]) -> list[NotificationDict]:
    """INSERT ... RETURNING the rows (MariaDB 10.5+, SQLite 3.35+), in multi-row statements;
    returns them in the order of ``values``, without a second query."""
    if not values:
        return []
    rows = connection.execute(INSERT, list(values)).all()
    return [notification_dict(row) for row in in_order(values, rows)]


def in_order(values: Sequence[dict[str, Any]], rows: Sequence[Any]) -> list[Any]:
    """``rows`` matched to the ``values`` they were inserted from.

    RETURNING does not promise the order of a multi-row INSERT (MariaDB keeps it in practice,
    which the first check confirms cheaply); otherwise rows are matched on their content.
    Two values with the same content are the same notification twice, so either row fits
    either of them.
    """
    if len(rows) != len(values):
        raise RuntimeError(f"INSERT returned {len(rows)} rows for {len(values)}")
    if all(_same(value, row) for value, row in zip(values, rows, strict=True)):
        return list(rows)
    by_content: defaultdict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for row in rows:
        by_content[_content(row._mapping)].append(row)
    return [by_content[_content(value)].pop() for value in values]


def _same(value: dict[str, Any], row: Any) -> bool:
    return bool(
        row.recipient_id == value["recipient_id"]
        and row.message == value["message"]
        and row.sender_id == value["sender_id"]
        and row.type == value["type"]
        and row.data == value["data"]
    )


def _content(mapping: Any) -> tuple[Any, ...]:
    data = json.dumps(mapping["data"], sort_keys=True)
    return (mapping["recipient_id"], mapping["sender_id"], mapping["type"], mapping["message"]) + (
        data,
    )


def record_delivered(connection: sa.Connection, ids: Sequence[int], now: datetime) -> None:
    """Mark pending rows delivered; a row read meanwhile stays read."""
    if ids:
        connection.execute(
            sa.update(TABLE)
            .where(TABLE.c.id.in_(ids), TABLE.c.status == Status.PENDING.value)
            .values(status=Status.DELIVERED.value, delivered_at=now)
        )
