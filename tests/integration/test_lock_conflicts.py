"""A batch that loses a deadlock is run again, not failed: two batches marking overlapping rows
delivered (live delivery and a replay) can deadlock in InnoDB, which rolls one back."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa

from app.extensions import db
from app.services import storage
from app.services.batching import HeldConnection
from app.services.validation import NewSend
from tests.conftest import MARIADB

pytestmark = [pytest.mark.integration, pytest.mark.mariadb]


def test_a_transaction_rolled_back_by_a_deadlock_is_run_again(
    make_app: Callable[..., Any], database_url: str
) -> None:
    app = make_app()
    now = datetime(2026, 1, 2, 3, 4, 5)
    with app.app_context():
        with db.engine.begin() as connection:
            send = NewSend(tuple(f"u{n}" for n in range(6)), "m", "t", None, batch=True)
            ids = [n["id"] for n in storage.insert(connection, storage.row_values(send, None, now))]
        first, second, others = ids[0], ids[1], ids[2:]
        locked_second = threading.Event()
        waiting_on_second = threading.Event()
        database = database_url.rsplit("/", 1)[1].split("?")[0]

        def rival() -> None:
            """Locks ``second`` and four more rows (so InnoDB picks the other as its victim),
            then asks for ``first``, which the work below holds: a deadlock."""
            connection = pymysql.connect(**MARIADB, database=database)
            try:
                with connection.cursor() as cursor:
                    cursor.execute("BEGIN")
                    for row in [second, *others]:
                        cursor.execute("UPDATE notifications SET type = 'x' WHERE id = %s", (row,))
                    locked_second.set()
                    waiting_on_second.wait(10)
                    threading.Event().wait(0.3)  # the work is blocked on ``second`` by now
                    cursor.execute("UPDATE notifications SET type = 'x' WHERE id = %s", (first,))
                connection.commit()
            finally:
                connection.close()

        attempts: list[int] = []

        def work(connection: sa.Connection) -> None:
            attempts.append(len(attempts) + 1)
            if len(attempts) == 1:
                storage.record_delivered(connection, [first], now)
                locked_second.wait(10)
                waiting_on_second.set()
            storage.record_delivered(connection, [first, second], now)

        thread = threading.Thread(target=rival)
        thread.start()
        held = HeldConnection(db.engine, 3600)
        try:
            held.transact(work)
        finally:
            held.release()
            thread.join(15)
        with db.engine.connect() as connection:
            statuses = connection.execute(
                sa.select(storage.TABLE.c.status).where(storage.TABLE.c.id.in_([first, second]))
            ).scalars()
            assert set(statuses) == {"delivered"}
    assert attempts == [1, 2]
