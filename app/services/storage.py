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

import functools
import itertools
import json
import operator
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from app.models import MYSQL_DIALECTS, Notification, NotificationDict, Status, notification_dict
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
    """One pending row per recipient of ``send``: copies of one row with the recipient set (every
    row holds the same value objects but the recipient, which ``insert`` relies on for speed)."""
    row: dict[str, Any] = {
        "recipient_id": None,
        "sender_id": sender_id,
        "type": send.type,
        "message": send.message,
        "data": send.data,
        "status": Status.PENDING.value,
        "created_at": now,
    }
    return [dict(row, recipient_id=recipient) for recipient in send.recipient_ids]


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
    same_columns = _same_columns(values)
    runs = _runs(values, same_columns)
    returned: Sequence[Any]
    if same_columns and _literal_rows(connection):
        returned = _insert_literal(connection, values, runs)
    else:
        returned = connection.execute(INSERT, list(values)).all()
    if len(returned) != len(values):
        raise RuntimeError(f"INSERT returned {len(returned)} rows for {len(values)}")
    ids = list(map(_FIRST, returned))
    in_order = list(map(_SECOND, returned)) == list(map(_RECIPIENT, values)) and all(
        map(operator.lt, ids, ids[1:])
    )
    if not in_order:
        ids = _ids_by_content(connection, values, ids)
    return _stored(ids, values, runs)


_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)
_RECIPIENT = operator.itemgetter("recipient_id")


def _same_columns(values: Sequence[dict[str, Any]]) -> bool:
    """Whether every row of ``values`` has the columns of the first (in any order)."""
    columns = values[0].keys()
    return all(map(operator.eq, map(dict.keys, values), itertools.repeat(columns)))


def _runs(values: Sequence[dict[str, Any]], same_columns: bool) -> list[tuple[int, int]]:
    """``values`` cut in runs (start, stop) of rows holding the same value objects as the row
    before in every column but ``recipient_id`` (a send's rows, from ``row_values``): a run's
    statement text and stored dicts are made once, then varied by recipient. Found column by
    column in C (``operator.is_not`` over the column and itself shifted by one), not row by row.
    Rows without the same columns as the first are each a run of their own."""
    count = len(values)
    if not same_columns or "recipient_id" not in values[0]:
        return [(i, i + 1) for i in range(count)]
    starts = {0, count}
    for name in values[0]:
        if name != "recipient_id":
            column = list(map(operator.itemgetter(name), values))
            if not all(map(operator.is_, column, itertools.repeat(column[0]))):
                shifted = map(operator.is_not, column[1:], column)
                starts.update(itertools.compress(range(1, count), shifted))
    ordered = sorted(starts)
    return list(itertools.pairwise(ordered))


def _stored(
    ids: Sequence[int], values: Sequence[dict[str, Any]], runs: Sequence[tuple[int, int]]
) -> list[NotificationDict]:
    """``notification_dict`` of each row written, made once per run (``_runs``: the rows of a
    send share every value object but the recipient), the others copies of it with their id and
    recipient (1,000 rows 2.9 -> 0.25 ms of CPU, with ``_runs`` 0.5 ms shared with the text).
    """
    stored: list[NotificationDict] = []
    for start, stop in runs:
        made = notification_dict(_Row(id=ids[start], **values[start]))
        stored.append(made)
        if stop - start > 1:
            recipients = map(_RECIPIENT, values[start + 1 : stop])
            copies = [
                dict(made, id=i, recipientId=recipient)
                for i, recipient in zip(ids[start + 1 : stop], recipients, strict=True)
            ]
            stored += cast(list[NotificationDict], copies)
    return stored


#: Characters of row values per INSERT of our own (at most 4 bytes each in UTF-8: 4 MiB, a
#: quarter of MariaDB's default max_allowed_packet); a row longer than that goes alone.
LITERAL_PAGE_CHARS = 1 << 20
#: Rows per INSERT of our own.
LITERAL_PAGE_ROWS = 1000


def _literal_rows(connection: sa.Connection) -> bool:
    """Whether rows with the same columns (``row_values``'s) go in INSERT text of our own: on
    MariaDB (RETURNING) through PyMySQL. Other dialects keep SQLAlchemy's."""
    dialect = connection.dialect
    if dialect.name not in MYSQL_DIALECTS or dialect.driver != "pymysql":
        return False
    return bool(dialect.insert_returning)


def _insert_literal(
    connection: sa.Connection, values: Sequence[dict[str, Any]], runs: Sequence[tuple[int, int]]
) -> list[Any]:
    """The INSERT ... RETURNING id, recipient_id of ``INSERT``, with the values written into the
    text (``statements``). SQLAlchemy's insertmanyvalues compiled and escaped each row's every
    parameter: 21 ms of CPU for 1,000 rows; the text of ``statements`` takes 0.3-0.5 ms."""
    dbapi: Any = connection.connection.dbapi_connection
    returned: list[Any] = []
    for statement in statements(values, runs, connection.dialect, dbapi.escape):
        # no_parameters: the text goes to cursor.execute alone, so a % in a value is a %.
        result = connection.exec_driver_sql(statement, execution_options={"no_parameters": True})
        returned.extend(result.all())
    return returned


def statements(
    values: Sequence[dict[str, Any]],
    runs: Sequence[tuple[int, int]],
    dialect: sa.Dialect,
    escape: Callable[[Any], str],
) -> list[str]:
    """The INSERT ... RETURNING texts of ``values`` (every row with the columns of the first),
    ``runs`` from ``_runs``: each value through its column type's bind processor (JSON's
    serializer) and ``escape``, PyMySQL's own (``Connection.escape``, what ``cursor.execute``
    does to parameters). Each distinct value object is escaped once, and a run's rows are
    one text around the recipient: only the recipient is escaped per row. Pages are cut by
    size, not at 100 rows."""
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

    def texts(value: dict[str, Any]) -> list[str]:
        parts = []
        for name, process, seen in zip(columns, processors, escaped, strict=True):
            item = value[name]
            text = seen.get(id(item))
            if text is None:
                text = seen[id(item)] = escape(process(item) if process else item)
            parts.append(text)
        return parts

    rows: list[str] = []
    for start, stop in runs:
        parts = texts(values[start])
        rows.append("(" + ",".join(parts) + ")")
        if stop - start > 1:
            at = columns.index("recipient_id")
            prefix = "".join(["(", *(part + "," for part in parts[:at])])
            suffix = "".join([*("," + part for part in parts[at + 1 :]), ")"])
            recipients: list[Any] = list(map(_RECIPIENT, values[start + 1 : stop]))
            process = processors[at]
            if process is not None:
                recipients = list(map(process, recipients))
            rows += _escaped_rows(escape, recipients, prefix, suffix)
    return [head + ",".join(page) + tail for page in _pages(rows)]


#: Joins the recipients escaped in one call: a control character PyMySQL's escaping keeps.
_JOINER = "\x01"


def _escaped_rows(
    escape: Callable[[Any], str], items: list[Any], prefix: str, suffix: str
) -> list[str]:
    """``[prefix + escape(item) + suffix for item in items]``, with one call of ``escape`` when
    every item is a str and no text holds ``_JOINER``: PyMySQL escapes a str character by
    character between quotes (a translate table, or ``'`` doubled under NO_BACKSLASH_ESCAPES),
    so the escape of the items joined by ``_JOINER`` is their escapes joined by it (1,000
    recipients 0.66 -> 0.1 ms). The statement tests compare it with escaping each."""
    if set(map(type, items)) == {str} and _JOINER not in prefix and _JOINER not in suffix:
        joined = _JOINER.join(items)
        texts = escape(joined)
        joiners = len(items) - 1
        if (
            joined.count(_JOINER) == joiners == texts.count(_JOINER)
            and texts[:1] == texts[-1:] == "'"
        ):
            between = "'" + suffix + _JOINER + prefix + "'"
            return (prefix + texts.replace(_JOINER, between) + suffix).split(_JOINER)
    return [prefix + text + suffix for text in map(escape, items)]


def _pages(rows: list[str]) -> list[list[str]]:
    """``rows`` in pages of at most LITERAL_PAGE_CHARS characters (a longer row alone) and
    LITERAL_PAGE_ROWS rows; one page, the usual case, is found by one sum."""
    if len(rows) <= LITERAL_PAGE_ROWS and sum(map(len, rows)) <= LITERAL_PAGE_CHARS:
        return [rows]
    pages: list[list[str]] = [[]]
    size = 0
    for row in rows:
        page = pages[-1]
        if page and (size + len(row) > LITERAL_PAGE_CHARS or len(page) >= LITERAL_PAGE_ROWS):
            pages.append(page := [])
            size = 0
        page.append(row)
        size += len(row)
    return pages


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


def _record_delivered_statement(condition: sa.ColumnElement[bool]) -> sa.Update:
    """Pending rows matching ``condition`` made delivered. The ids go as a few ``BETWEEN``s
    when they are a few runs: a batch's rows have consecutive ids, and 1,000 bound ids were
    most of the UPDATE's cost in PyMySQL."""
    return (
        sa.update(TABLE)
        .where(condition, TABLE.c.status == Status.PENDING.value)
        .values(status=Status.DELIVERED.value, delivered_at=sa.bindparam("delivered_now"))
    )


#: ``record_delivered``'s statements for 1 to MAX_ID_RANGES runs of ids, made once (built and
#: keyed for SQLAlchemy's cache on every call they were most of its CPU, bench/PROFILE.md).
RECORD_DELIVERED_RANGES = [
    _record_delivered_statement(
        sa.or_(
            *(
                TABLE.c.id.between(sa.bindparam(f"low{k}"), sa.bindparam(f"high{k}"))
                for k in range(count)
            )
        )
    )
    for count in range(1, MAX_ID_RANGES + 1)
]


def record_delivered(connection: sa.Connection, ids: Sequence[int], now: datetime) -> None:
    """Mark pending rows delivered; a row read meanwhile stays read."""
    if not ids:
        return
    ranges = id_ranges(ids)
    if len(ranges) > MAX_ID_RANGES:
        statement = _record_delivered_statement(TABLE.c.id.in_(sorted(set(ids))))
        connection.execute(statement, {"delivered_now": now})
        return
    values: dict[str, Any] = {"delivered_now": now}
    for k, (low, high) in enumerate(ranges):
        values[f"low{k}"] = low
        values[f"high{k}"] = high
    connection.execute(RECORD_DELIVERED_RANGES[len(ranges) - 1], values)


def _missed_query(*conditions: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return (
        sa.select(TABLE)
        .where(TABLE.c.recipient_id == sa.bindparam("user_id"), *conditions)
        .order_by(TABLE.c.id)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


#: ``missed``'s two statements, made once: built and keyed for SQLAlchemy's cache on every
#: connect they cost half of the read's CPU (bench/PROFILE.md).
MISSED_PENDING = _missed_query(TABLE.c.status == Status.PENDING.value)
MISSED_SINCE = _missed_query(
    sa.or_(TABLE.c.id > sa.bindparam("last_id"), TABLE.c.status == Status.PENDING.value)
)


def missed(
    connection: sa.Connection, user_id: str, last_id: int | None, limit: int
) -> list[NotificationDict]:
    """A user's notifications newer than ``last_id`` and every pending one (without it: the
    pending ones), oldest first, at most ``limit``; ``replay.replay`` says why."""
    if last_id is None:
        result = connection.execute(MISSED_PENDING, {"user_id": user_id, "limit": limit})
    else:
        values = {"user_id": user_id, "last_id": last_id, "limit": limit}
        result = connection.execute(MISSED_SINCE, values)
    return [notification_dict(row) for row in result.all()]


#: ``missed_many``'s branch of one read, tagged with the read's slot, with its own ``ORDER BY``
#: and ``LIMIT``: parenthesized on MariaDB/MySQL; SQLite takes those only in a derived table,
#: which MariaDB materializes (a 50-read burst took 1.1-1.6 ms per read that way, 44-82 us
#: parenthesized, against ~400 us one statement per read).
_MISSED_SELECT = (
    "SELECT {columns}, {slot} AS slot FROM notifications"
    " WHERE recipient_id = :u{slot} AND {condition} ORDER BY id LIMIT :n{slot}"
)
_MISSED_BRANCHES = {True: "({select})", False: "SELECT * FROM ({select}) AS r{slot}"}
_MISSED_CONDITIONS = {
    False: f"status = '{Status.PENDING.value}'",
    True: f"(id > :a{{slot}} OR status = '{Status.PENDING.value}')",
}
_MISSED_COLUMNS = ", ".join(column.name for column in TABLE.c)
#: Statements of ``missed_many`` kept by shape: each count padded to a power of two, so a
#: handful of shapes (not one per burst size) live here and in SQLAlchemy's compiled cache.
MISSED_MANY_SHAPES = 32


@functools.lru_cache(maxsize=MISSED_MANY_SHAPES)
def _missed_many_statement(parenthesized: bool, pending: int, since: int) -> sa.TextualSelect:
    """Branches ``0 .. pending - 1`` read pending rows, the ``since`` after them a lastId's."""
    branches = []
    for slot in range(pending + since):
        condition = _MISSED_CONDITIONS[slot >= pending].format(slot=slot)
        select = _MISSED_SELECT.format(columns=_MISSED_COLUMNS, slot=slot, condition=condition)
        branches.append(_MISSED_BRANCHES[parenthesized].format(select=select, slot=slot))
    return sa.text(" UNION ALL ".join(branches)).columns(*TABLE.c, sa.column("slot", sa.Integer))


def _padded(count: int) -> int:
    return 1 << (count - 1).bit_length() if count else 0


def missed_many(
    connection: sa.Connection, reads: Sequence[tuple[str, int | None, int]]
) -> list[list[NotificationDict]]:
    """``missed(connection, *read)`` for each of ``reads`` (user, lastId, limit), in one
    statement: a burst of connects reads in one round trip and one execution, not one each.
    The reads without a lastId come first, then those with one; each group is padded with
    reads of nobody, at most 0 rows, to the statement's shape."""
    if len(reads) == 1:
        return [missed(connection, *reads[0])]
    pending = [i for i, read in enumerate(reads) if read[1] is None]
    since = [i for i, read in enumerate(reads) if read[1] is not None]
    slots: list[int | None] = [
        *pending,
        *[None] * (_padded(len(pending)) - len(pending)),
        *since,
        *[None] * (_padded(len(since)) - len(since)),
    ]
    pending_slots = _padded(len(pending))
    values: dict[str, Any] = {}
    for slot, index in enumerate(slots):
        user_id, last_id, limit = ("", 0, 0) if index is None else reads[index]
        values[f"u{slot}"] = user_id
        values[f"n{slot}"] = limit
        if slot >= pending_slots:
            values[f"a{slot}"] = last_id
    parenthesized = connection.dialect.name in MYSQL_DIALECTS
    statement = _missed_many_statement(parenthesized, pending_slots, len(slots) - pending_slots)
    found: list[list[NotificationDict]] = [[] for _ in reads]
    for row in connection.execute(statement, values):
        found[cast(int, slots[row.slot])].append(notification_dict(row))
    for rows in found:
        rows.sort(key=_by_id)
    return found


_by_id = operator.itemgetter("id")


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
        for dialect in MYSQL_DIALECTS:
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
