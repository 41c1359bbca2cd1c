"""The send's INSERT text, made from a row template per run of a send's rows, is byte for byte
the text of escaping every row's every value (the algorithm before the template, kept here),
and the stored dicts equal ``notification_dict`` of each row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from pymysql.constants import SERVER_STATUS

from app.models import notification_dict
from app.services import storage
from app.services.validation import NewSend
from tests.conftest import REPRODUCIBLE

pytestmark = pytest.mark.unit

DIALECT = sa.create_engine("mysql+pymysql://user@localhost/db?charset=utf8mb4").dialect


def escaper(no_backslash_escapes: bool) -> Any:
    """PyMySQL's ``Connection.escape`` without a server: its escaping reads only the
    connection's server status (NO_BACKSLASH_ESCAPES doubles quotes instead)."""
    connection = pymysql.connections.Connection(defer_connect=True, charset="utf8mb4")
    connection.server_status = (
        SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES if no_backslash_escapes else 0
    )
    return connection.escape


def reference(
    values: list[dict[str, Any]], escape: Any, page_chars: int, page_rows: int
) -> list[str]:
    """The statements as ``storage._insert_literal`` made them before the template (d79a160):
    every row's every column looked up by value object, escaped once per object, joined."""
    dialect = DIALECT
    columns = list(values[0])
    processors = [
        storage.TABLE.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
    ]
    quote = dialect.identifier_preparer
    names = ", ".join(quote.quote(name) for name in columns)
    head = f"INSERT INTO {quote.format_table(storage.TABLE)} ({names}) VALUES "  # noqa: S608
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
        if page and (size + len(row) > page_chars or len(page) >= page_rows):
            pages.append(page := [])
            size = 0
        page.append(row)
        size += len(row)
    return [head + ",".join(page) + tail for page in pages]


#: Characters that escaping changes or that the template code treats apart, and any other.
TRICKY = st.sampled_from(list("a'\"\\%\x00\x01\x1a\n\r\t éü日🎉{}()s,"))
TEXT = st.text(TRICKY | st.characters(codec="utf-8"), max_size=12)
LONG_TEXT = st.one_of(TEXT, st.builds(lambda t, n: t * n, TEXT, st.integers(1, 400)))
JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
SEND = st.builds(
    lambda recipients, message, type_, data, sender, micros: (
        NewSend(tuple(dict.fromkeys(recipients)), message, type_, data, batch=True),
        sender,
        datetime(2026, 12, 6, 23, 0, 0, micros, tzinfo=UTC if micros % 2 else None),
    ),
    st.lists(TEXT, min_size=1, max_size=40),
    LONG_TEXT,
    TEXT,
    st.none() | st.dictionaries(TEXT, JSON, max_size=4),
    st.none() | TEXT,
    st.integers(0, 999_999),
)
#: What a caller might do to a batch's rows besides ``row_values``: a column of one row set to
#: an equal value that is another object, or to another value; a recipient that is no str;
#: the columns in another order; rows swapped between sends.
CHANGE = st.tuples(
    st.sampled_from(["equal copy", "other value", "int recipient", "reordered", "swap"]),
    st.integers(0, 10_000),
    st.sampled_from(["recipient_id", "sender_id", "type", "message", "data", "created_at"]),
)


def changed(values: list[dict[str, Any]], change: tuple[str, int, str]) -> None:
    kind, at, column = change
    at %= len(values)
    row = values[at]
    if kind == "equal copy":
        item = row[column]
        row[column] = (
            type(item)(item) if isinstance(item, str | dict) else item.replace() if item else item
        )
    elif kind == "other value":
        row[column] = "changed" if column != "created_at" else datetime(2027, 1, 1)
    elif kind == "int recipient":
        row["recipient_id"] = at
    elif kind == "reordered":
        values[at] = dict(reversed(row.items()))
    else:
        values[at], values[-1 - at] = values[-1 - at], row


@given(
    sends=st.lists(SEND, min_size=1, max_size=4),
    changes=st.lists(CHANGE, max_size=3),
    page_chars=st.sampled_from([storage.LITERAL_PAGE_CHARS, 400, 60, 1]),
    page_rows=st.sampled_from([storage.LITERAL_PAGE_ROWS, 7, 1]),
    no_backslash_escapes=st.booleans(),
)
@REPRODUCIBLE
def test_insert_text_is_the_text_of_escaping_every_value(
    sends: list[tuple[NewSend, str | None, datetime]],
    changes: list[tuple[str, int, str]],
    page_chars: int,
    page_rows: int,
    no_backslash_escapes: bool,
) -> None:
    values = [row for send in sends for row in storage.row_values(*send)]
    for change in changes:
        changed(values, change)
    escape = escaper(no_backslash_escapes)
    expected = reference(values, escape, page_chars, page_rows)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(storage, "LITERAL_PAGE_CHARS", page_chars)
        patch.setattr(storage, "LITERAL_PAGE_ROWS", page_rows)
        runs = storage._runs(values, storage._same_columns(values))  # noqa: SLF001
        assert storage.statements(values, runs, DIALECT, escape) == expected
    ids = list(range(7, 7 + len(values)))
    assert storage._stored(ids, values, runs) == [  # noqa: SLF001
        notification_dict(storage._Row(id=i, **value))  # noqa: SLF001
        for i, value in zip(ids, values, strict=True)
    ]


def test_a_send_of_a_thousand_is_one_run_and_one_statement() -> None:
    send = NewSend(tuple(f"user-{i}" for i in range(1000)), "m'%s\\", "t", {"k": 1}, True)
    values = storage.row_values(send, "s", datetime(2026, 12, 6))
    runs = storage._runs(values, storage._same_columns(values))  # noqa: SLF001
    assert runs == [(0, 1000)]
    escape = escaper(no_backslash_escapes=False)
    expected = reference(values, escape, storage.LITERAL_PAGE_CHARS, storage.LITERAL_PAGE_ROWS)
    assert storage.statements(values, runs, DIALECT, escape) == expected
    assert len(expected) == 1
