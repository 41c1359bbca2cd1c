"""Stored notifications are matched to the values they were written from, in any order."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import notification_dict
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
    delivered at ``now``, a read one among them stays read, and the rows between them are
    untouched. A few runs take a statement made once (``RECORD_DELIVERED_RANGES``)."""
    app = make_app()
    now = datetime(2026, 1, 2, 3, 4, 5)
    later = datetime(2026, 1, 2, 3, 4, 6)
    send = NewSend(tuple(f"u{n}" for n in range(10)), "m", "t", None, batch=True)
    executed: list[Any] = []
    with app.app_context(), db.engine.begin() as connection:
        ids = [n["id"] for n in storage.insert(connection, storage.row_values(send, None, now))]
        read = ids[picked[-1]]
        connection.execute(
            storage.TABLE.update().where(storage.TABLE.c.id == read).values(status="read")
        )
        sa.event.listen(connection, "before_execute", lambda _c, s, *_: executed.append(s))
        storage.record_delivered(connection, [ids[i] for i in picked], later)
        table = storage.TABLE
        status = {
            row.id: (row.status, row.delivered_at)
            for row in connection.execute(
                sa.select(table.c.id, table.c.status, table.c.delivered_at)
            )
        }
    expected = {
        ids[i]: ("read", None)
        if ids[i] == read
        else ("delivered", later)
        if i in picked
        else ("pending", None)
        for i in range(10)
    }
    assert status == expected
    runs = len(storage.id_ranges([ids[i] for i in picked]))
    prebuilt = runs <= storage.MAX_ID_RANGES
    assert (executed[0] is storage.RECORD_DELIVERED_RANGES[runs - 1]) if prebuilt else executed


def test_id_ranges() -> None:
    assert storage.id_ranges([9, 1, 2, 3, 7, 8, 3, 5]) == [(1, 3), (5, 5), (7, 9)]
    assert storage.id_ranges([]) == []


TRICKY_MESSAGES = [
    "plain",
    'it\'s "quoted" \\ back\\slash',
    "100% %s %(name)s %% {}",
    "line\nbreak\ttab\r\x00nul \x1a",
    "non-ASCII é ü 日本 and 🎉 beyond the BMP",
]
TRICKY_DATA: list[Any] = [
    None,
    {"k": 1},
    {"nested": {"list": [1, 2.5, None, True, "x'y"]}, "é": "🎉", "big": 2**63 + 1},
    {"text": "%s \\ ' \""},
]


def tricky_values() -> list[dict[str, Any]]:
    now = datetime(2026, 1, 2, 3, 4, 5, 678901)
    written = []
    for i, (message, data) in enumerate(zip(TRICKY_MESSAGES * 4, TRICKY_DATA * 5, strict=False)):
        send = NewSend((f"r-{i}", f"r'{i}", f"r\\{i}"), message, f"type-{i % 3}", data, True)
        written += storage.row_values(send, None if i % 2 else f"sender-{i}", now)
    return written


def raw_rows(connection: sa.Connection, ids: list[int]) -> list[tuple[Any, ...]]:
    """The stored columns but the id, as the database gives them (the JSON as its text)."""
    table = storage.TABLE
    columns = [column for column in table.c if column.name != "id"]
    query = sa.select(*[sa.cast(c, sa.Text) if c.name == "data" else c for c in columns])
    return [
        tuple(row)
        for row in connection.execute(query.where(table.c.id.in_(ids)).order_by(table.c.id))
    ]


def test_insert_stores_what_sqlalchemys_insert_stores(make_app: Callable[..., Any]) -> None:
    """Quotes, backslashes, % signs, control characters, non-ASCII, JSON of every kind and
    NULLs: the rows ``storage.insert`` writes equal those of SQLAlchemy's own INSERT."""
    app = make_app()
    written = tricky_values()
    with app.app_context(), db.engine.begin() as connection:
        ours = [n["id"] for n in storage.insert(connection, written)]
        theirs = [row.id for row in connection.execute(storage.INSERT, written).all()]
        assert raw_rows(connection, ours) == raw_rows(connection, theirs)
        assert len(set(ours)) == len(written)


@pytest.mark.mariadb
def test_a_thousand_rows_are_one_insert_and_pages_are_cut_by_size(
    make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One statement for a 1,000-recipient send (SQLAlchemy's insertmanyvalues made ten of 100
    rows, each escaped parameter by parameter); a page never passes LITERAL_PAGE_CHARS."""
    app = make_app()
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT"):
            statements.append(statement)

    send = NewSend(tuple(f"user-{i}" for i in range(1000)), "hello", "t", {"k": 1}, batch=True)
    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            with db.engine.begin() as connection:
                stored = storage.insert(connection, storage.row_values(send, "s", datetime.now()))
                assert len(statements) == 1
                monkeypatch.setattr(storage, "LITERAL_PAGE_CHARS", 3000)
                statements.clear()
                again = storage.insert(connection, storage.row_values(send, "s", datetime.now()))
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
    assert [n["recipientId"] for n in stored] == list(send.recipient_ids)
    assert [n["recipientId"] for n in again] == list(send.recipient_ids)
    assert len(statements) > 10
    assert all(len(s.partition(" VALUES ")[2]) < 3000 + 100 for s in statements)
    ids = [n["id"] for n in stored + again]
    assert ids == sorted(ids) and len(set(ids)) == 2000


@pytest.mark.mariadb
def test_concurrent_inserts_each_get_their_own_rows_ids(make_app: Callable[..., Any]) -> None:
    """Six connections inserting 1,000-row sends at once: every id returned is the row written
    from that value (its recipient and message read back), whatever the interleaving."""
    app = make_app()
    errors: list[BaseException] = []
    results: dict[int, list[Any]] = {}

    def sender(n: int) -> None:
        try:
            with app.app_context():
                for round_ in range(3):
                    recipients = tuple(f"c{n}-{i}" for i in range(1000))
                    send = NewSend(recipients, f"m{n}-{round_}", "t", None, batch=True)
                    with db.engine.begin() as connection:
                        written = storage.row_values(send, None, datetime.now())
                        results[n * 10 + round_] = storage.insert(connection, written)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with app.app_context(), db.engine.connect() as connection:
        table = storage.TABLE
        stored = {
            row.id: (row.recipient_id, row.message)
            for row in connection.execute(
                sa.select(table.c.id, table.c.recipient_id, table.c.message)
            )
        }
    for notifications in results.values():
        for n in notifications:
            assert stored[n["id"]] == (n["recipientId"], n["message"])
    assert len(results) == 18


def test_the_notifications_returned_are_the_rows_read_back(make_app: Callable[..., Any]) -> None:
    """Each send's notifications are copies of its first (``storage._stored``): every one still
    equals ``notification_dict`` of its row as the database gives it back."""
    app = make_app()
    written = tricky_values()
    written[4] = dict(written[4], message="changed in one row only")
    with app.app_context(), db.engine.begin() as connection:
        stored = storage.insert(connection, written)
        table = storage.TABLE
        rows = connection.execute(table.select().where(table.c.id.in_([n["id"] for n in stored])))
        by_id = {row.id: notification_dict(row) for row in rows}
    assert stored == [by_id[n["id"]] for n in stored]
    assert stored[4]["message"] == "changed in one row only"
    assert stored[3]["message"] == stored[5]["message"] != stored[4]["message"]
    assert len({id(n) for n in stored}) == len(stored)


def test_missed_runs_its_two_statements_made_once(make_app: Callable[..., Any]) -> None:
    """What a connect replays, read by one of two statements built at import (a statement built
    per call is keyed for SQLAlchemy's cache on every connect), with the same rows: pending
    ones, or with a lastId every newer one and every pending one, oldest first, at most the
    limit."""
    app = make_app()
    now = datetime(2026, 1, 2, 3, 4, 5)
    send = NewSend(("reader",) * 5 + ("other",), "m", "t", None, batch=True)
    executed: list[Any] = []
    with app.app_context(), db.engine.begin() as connection:
        ids = [n["id"] for n in storage.insert(connection, storage.row_values(send, None, now))]
        storage.record_delivered(connection, ids[1:3], now)
        sa.event.listen(connection, "before_execute", lambda _c, s, *_: executed.append(s))
        pending = storage.missed(connection, "reader", None, 10)
        since = storage.missed(connection, "reader", ids[1], 10)
        limited = storage.missed(connection, "reader", None, 2)
    assert executed == [storage.MISSED_PENDING, storage.MISSED_SINCE, storage.MISSED_PENDING]
    assert [n["id"] for n in pending] == [ids[0], ids[3], ids[4]]
    assert [n["id"] for n in since] == [ids[0], ids[2], ids[3], ids[4]]
    assert [n["id"] for n in limited] == [ids[0], ids[3]]


def test_missed_many_reads_a_burst_in_one_statement_as_missed_reads_each(
    make_app: Callable[..., Any],
) -> None:
    """The reads of a burst of connects in one statement: for each read, exactly what
    ``missed`` gives it alone (pending ones, or with a lastId every newer and every pending
    one, oldest first, at most its limit), the same user read twice included."""
    app = make_app()
    now = datetime(2026, 1, 2, 3, 4, 5)
    recipients = ("ann", "bob", "ann", "cy", "bob", "ann", "bob", "ann")
    send = NewSend(recipients, "m", "t", {"k": [1, "é"]}, batch=True)
    executed: list[Any] = []
    with app.app_context(), db.engine.begin() as connection:
        stored = storage.insert(connection, storage.row_values(send, "s", now))
        ids = [n["id"] for n in stored]
        storage.record_delivered(connection, [ids[0], ids[1], ids[5]], now)
        reads = [
            ("ann", None, 10),
            ("bob", ids[1], 10),
            ("ann", ids[0], 2),
            ("nobody", None, 10),
            ("cy", 0, 10),
            ("ann", None, 1),
            ("bob", None, 10),
        ]
        alone = [storage.missed(connection, *read) for read in reads]
        sa.event.listen(connection, "before_execute", lambda _c, s, *_: executed.append(s))
        together = storage.missed_many(connection, reads)
    assert len(executed) == 1
    assert together == alone
    assert [[n["id"] for n in found] for found in together] == [
        [ids[2], ids[7]],
        [ids[4], ids[6]],
        [ids[2], ids[5]],
        [],
        [ids[3]],
        [ids[2]],
        [ids[4], ids[6]],
    ]


def test_missed_many_keeps_one_statement_for_bursts_of_near_sizes(
    make_app: Callable[..., Any],
) -> None:
    """Each group of reads is padded to a power of two: bursts of 5, 6, 7 and 8 reads without
    a lastId run one statement, not four (each would stay in SQLAlchemy's compiled cache)."""
    app = make_app()
    executed: list[Any] = []
    with app.app_context(), db.engine.begin() as connection:
        sa.event.listen(connection, "before_execute", lambda _c, s, *_: executed.append(s))
        for size in (5, 6, 7, 8):
            found = storage.missed_many(connection, [(f"u{i}", None, 10) for i in range(size)])
            assert found == [[] for _ in range(size)]
        storage.missed_many(connection, [(f"u{i}", None, 10) for i in range(9)])
    assert len({id(statement) for statement in executed[:4]}) == 1
    assert executed[4] is not executed[0]
