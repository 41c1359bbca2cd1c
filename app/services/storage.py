"""Every SQL statement on the notifications table: the only module that reads or writes it.

Sending stores rows as pending and records them delivered (``insert``, ``record_delivered``);
replay reads what a user missed (``missed``); the inbox pages, counts and marks read
(``page_query``, ``unread_count_query``, ``mark_read``). Retention's purge is the one exception
(``services.retention``, generic over its tables).

The send path's statements are plain SQLAlchemy Core (no ORM identity map, no per-row objects):
it runs them for many notifications at once, see ``services.batching``. Each function takes the
connection to run on: a batch worker's own, or the request's session's.
"""

from __future__ import annotations

import itertools
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
#: RETURNING only what the database decides: the id (and the recipient, to check the order).
INSERT = (
    sa.insert(TABLE)
    .returning(TABLE.c.id, TABLE.c.recipient_id)
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
    """INSERT ... RETURNING the ids (MariaDB 10.5+, SQLite 3.35+) in multi-row statements;
    returns the stored notifications in the order of ``values``, without a second query.

    Rows come back in the order written when each has its value's recipient and the ids grow
    (a multi-row INSERT numbers its rows in order); anything else is matched on content.

    Everything but the id is what was written, so only the ids come back: parsing whole rows
    (JSON, timestamps) in PyMySQL's pure Python was most of the cost of a 1,000-row send.
    """
    if not values:
        return []
    returned: Sequence[Any]
    if _literal_rows(connection, values):
        returned = _insert_literal(connection, values)
    else:
        returned = connection.execute(INSERT, list(values)).all()
    if len(returned) != len(values):
        raise RuntimeError(f"INSERT returned {len(returned)} rows for {len(values)}")
    ids = [row[0] for row in returned]
    in_order = all(
        row[1] == value["recipient_id"] for row, value in zip(returned, values, strict=True)
    ) and all(earlier < later for earlier, later in itertools.pairwise(ids))
    if not in_order:
        ids = _ids_by_content(connection, values, ids)
    return _stored(ids, values)


def _stored(ids: Sequence[int], values: Sequence[dict[str, Any]]) -> list[NotificationDict]:
    """``notification_dict`` of each row written, made once per send: the rows of a send share
    every value object but the recipient, so the others are copies of its first with their id
    and recipient (1,000 rows 2.9 -> 0.24 ms of CPU)."""
    stored: list[NotificationDict] = []
    first: dict[str, Any] | None = None
    made: NotificationDict | None = None
    for i, value in zip(ids, values, strict=True):
        if (
            made is None
            or first is None
            or any(value[key] is not first[key] for key in value if key != "recipient_id")
        ):
            first, made = value, notification_dict(_Row(id=i, **value))
            stored.append(made)
            continue
        copy = made.copy()
        copy["id"] = i
        copy["recipientId"] = value["recipient_id"]
        stored.append(copy)
    return stored


#: Characters of row values per INSERT of our own (at most 4 bytes each in UTF-8: 4 MiB, a
#: quarter of MariaDB's default max_allowed_packet); a row longer than that goes alone.
LITERAL_PAGE_CHARS = 1 << 20
#: Rows per INSERT of our own.
LITERAL_PAGE_ROWS = 1000


def _literal_rows(connection: sa.Connection, values: Sequence[dict[str, Any]]) -> bool:
    """Whether ``values`` go in INSERT text of our own: on MariaDB (RETURNING) through PyMySQL,
    every row with the same columns (``row_values``'s). Other dialects keep SQLAlchemy's."""
    dialect = connection.dialect
    if dialect.name not in ("mysql", "mariadb") or dialect.driver != "pymysql":
        return False
    if not dialect.insert_returning:
        return False
    columns = values[0].keys()
    return all(value.keys() == columns for value in values)


def _insert_literal(connection: sa.Connection, values: Sequence[dict[str, Any]]) -> list[Any]:
    """The INSERT ... RETURNING id, recipient_id of ``INSERT``, with the values written into the
    text: each value through its column type's bind processor (JSON's serializer) and PyMySQL's
    own escaping (``Connection.escape``, what ``cursor.execute`` does to parameters), each
    distinct value object once (a send's rows share all but the recipient). SQLAlchemy's
    insertmanyvalues compiled and escaped each row's every parameter: 21 ms of CPU for 1,000
    rows, this 4.5 ms. Pages are cut by size, not at 100 rows."""
    dialect = connection.dialect
    dbapi: Any = connection.connection.dbapi_connection
    escape = dbapi.escape
    columns = list(values[0])
    processors = [
        TABLE.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
    ]
    quote = dialect.identifier_preparer
    names = ", ".join(quote.quote(name) for name in columns)
    # The table's own names; the values are escaped below.
    head = f"INSERT INTO {quote.format_table(TABLE)} ({names}) VALUES "  # noqa: S608
    tail = f" RETURNING {quote.quote('id')}, {quote.quote('recipient_id')}"
    escaped: list[dict[int, str]] = [{} for _ in columns]
    pages: list[list[str]] = [[]]
    size = 0
    for value in values:
        parts = []
        for name, process, seen in zip(columns, processors, escaped, strict=True):
            item = value[name]
            text = seen.get(id(item))
            if text is None:
                text = seen[id(item)] = escape(process(item) if process else item)
            parts.append(text)
        row = "(" + ",".join(parts) + ")"
        page = pages[-1]
        if page and (size + len(row) > LITERAL_PAGE_CHARS or len(page) >= LITERAL_PAGE_ROWS):
            pages.append(page := [])
            size = 0
        page.append(row)
        size += len(row)
    returned: list[Any] = []
    for page in pages:
        statement = head + ",".join(page) + tail
        # no_parameters: the text goes to cursor.execute alone, so a % in a value is a %.
        result = connection.exec_driver_sql(statement, execution_options={"no_parameters": True})
        returned.extend(result.all())
    return returned


class _Row:
    """A stored row made from the values written and the id given (for ``notification_dict``)."""

    delivered_at = read_at = None

    def __init__(self, **columns: Any) -> None:
        self.__dict__.update(columns)


def _ids_by_content(
    connection: sa.Connection, values: Sequence[dict[str, Any]], ids: list[int]
) -> list[int]:
    """The ids matched to ``values`` when RETURNING came back in another order (MariaDB keeps
    the order of a multi-row INSERT in practice; it does not promise it): the rows are read
    back and matched on their content. Two values with the same content are the same
    notification twice, so either id fits either of them.
    """
    rows = connection.execute(sa.select(TABLE).where(TABLE.c.id.in_(ids))).all()
    by_content: defaultdict[tuple[Any, ...], list[int]] = defaultdict(list)
    for row in rows:
        by_content[_content(row._mapping)].append(row.id)
    return [by_content[_content(value)].pop() for value in values]


def _content(mapping: Any) -> tuple[Any, ...]:
    data = json.dumps(mapping["data"], sort_keys=True)
    return (mapping["recipient_id"], mapping["sender_id"], mapping["type"], mapping["message"]) + (
        data,
    )


#: At most this many ``BETWEEN`` ranges in one UPDATE; ids in more runs go in an ``IN`` list.
MAX_ID_RANGES = 4


def id_ranges(ids: Sequence[int]) -> list[tuple[int, int]]:
    """The runs of consecutive ids in ``ids`` (any order, repeats allowed), lowest first."""
    ranges: list[tuple[int, int]] = []
    for i in sorted(set(ids)):
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1] = (ranges[-1][0], i)
        else:
            ranges.append((i, i))
    return ranges


def ids_condition(ids: Sequence[int]) -> sa.ColumnElement[bool]:
    """``id IN ids``, written as a few ``BETWEEN``s when the ids are a few runs: a batch's rows
    have consecutive ids, and 1,000 bound ids were most of the UPDATE's cost in PyMySQL."""
    ranges = id_ranges(ids)
    if len(ranges) > MAX_ID_RANGES:
        return TABLE.c.id.in_(sorted(set(ids)))
    return sa.or_(*(TABLE.c.id.between(low, high) for low, high in ranges))


def record_delivered(connection: sa.Connection, ids: Sequence[int], now: datetime) -> None:
    """Mark pending rows delivered; a row read meanwhile stays read."""
    if ids:
        connection.execute(
            sa.update(TABLE)
            .where(ids_condition(ids), TABLE.c.status == Status.PENDING.value)
            .values(status=Status.DELIVERED.value, delivered_at=now)
        )


def missed(
    connection: sa.Connection, user_id: str, last_id: int | None, limit: int
) -> list[NotificationDict]:
    """A user's notifications newer than ``last_id`` and every pending one (without it: the
    pending ones), oldest first, at most ``limit``; ``replay.replay`` says why."""
    query = sa.select(TABLE).where(TABLE.c.recipient_id == user_id)
    if last_id is not None:
        query = query.where(sa.or_(TABLE.c.id > last_id, TABLE.c.status == Status.PENDING.value))
    else:
        query = query.where(TABLE.c.status == Status.PENDING.value)
    rows = connection.execute(query.order_by(TABLE.c.id).limit(limit)).all()
    return [notification_dict(row) for row in rows]


def mark_read(
    connection: sa.Connection, user_id: str, ids: Sequence[int] | None, now: datetime
) -> int:
    """Mark the user's notifications (those of ``ids``, or all) read; returns how many changed.
    The recipient condition is in the UPDATE itself: another user's ids are not counted."""
    statement = sa.update(TABLE).where(
        TABLE.c.recipient_id == user_id, TABLE.c.status != Status.READ.value
    )
    if ids is not None:
        statement = statement.where(TABLE.c.id.in_(ids))
    result = connection.execute(statement.values(status=Status.READ.value, read_at=now))
    return int(result.rowcount or 0)


#: The ``status`` filters of the inbox; ``unread`` is everything not yet read.
STATUS_FILTERS: dict[str, tuple[Status, ...]] = {
    "pending": (Status.PENDING,),
    "delivered": (Status.DELIVERED,),
    "read": (Status.READ,),
    "unread": (Status.PENDING, Status.DELIVERED),
}
CATCH_UP_INDEX_HINT = (
    "USE INDEX (ix_notifications_recipient_id, ix_notifications_recipient_status_id)"
)


def page_query(
    user_id: str, limit: int, before: int | None, status: str | None, after: int | None = None
) -> sa.Select[Any]:
    """One page of the user's notifications, newest first (oldest first with ``after``), with
    one row more than ``limit`` (its presence says there is a next page).

    Served by ``ix_notifications_recipient_id`` (recipient_id, id) without a filter and by
    ``ix_notifications_recipient_status_id`` (recipient_id, status, id) with one; the recipient
    condition is always there, so a cursor never reaches another user's rows.
    """
    query = sa.select(Notification).where(Notification.recipient_id == user_id)
    if status is not None:
        query = query.where(Notification.status.in_(STATUS_FILTERS[status]))
    if before is not None:
        query = query.where(Notification.id < before)
    if after is not None:
        # MariaDB would walk the primary key in id order from ``after`` (ORDER BY ... LIMIT),
        # through every other user's rows; the recipient's own range is what is wanted.
        for dialect in ("mysql", "mariadb"):
            query = query.with_hint(Notification, CATCH_UP_INDEX_HINT, dialect_name=dialect)
        return query.where(Notification.id > after).order_by(Notification.id).limit(limit + 1)
    return query.order_by(Notification.id.desc()).limit(limit + 1)


def unread_count_query(user_id: str) -> sa.Select[Any]:
    """How many of the user's notifications are not read: a range of
    ``ix_notifications_recipient_status_id``."""
    return (
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(
            Notification.recipient_id == user_id,
            Notification.status.in_(STATUS_FILTERS["unread"]),
        )
    )
