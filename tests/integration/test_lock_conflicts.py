"""A batch that loses a deadlock is run again, not failed: two batches marking overlapping rows
delivered (live delivery and a replay) can deadlock in InnoDB, which rolls one back. Recording
rows delivered holds up no new send."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa

from app.extensions import db
from app.registry import services
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


def test_recording_delivered_does_not_hold_up_the_next_send(
    make_app: Callable[..., Any], database_url: str
) -> None:
    """The deliver worker's UPDATE of a range of ids, not yet committed, and a new send's
    INSERT meanwhile: under REPEATABLE READ the UPDATE locks the gap after the newest row and
    the INSERT waits for its commit (here: gives up after a second); the deliver worker reads
    committed rows only, and locks no gap."""
    app = make_app()
    now = datetime(2026, 1, 2, 3, 4, 5)
    database = database_url.rsplit("/", 1)[1].split("?")[0]
    outcome: list[str] = []

    def next_send() -> None:
        connection = pymysql.connect(**MARIADB, database=database)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
                cursor.execute(
                    "INSERT INTO notifications (recipient_id, type, message, status, created_at)"
                    " VALUES ('next', 'info', 'm', 'pending', NOW(6))"
                )
            connection.commit()
            outcome.append("stored")
        except pymysql.err.OperationalError as error:
            outcome.append(f"held up: {error.args[0]}")
        finally:
            connection.close()

    def probe(held: HeldConnection, items: Any) -> list[None]:
        def work(connection: sa.Connection) -> None:
            storage.record_delivered(connection, ids, now)
            thread = threading.Thread(target=next_send)
            thread.start()
            thread.join(15)

        held.transact(work)
        return [None for _ in items]

    with app.app_context():
        with db.engine.begin() as connection:
            send = NewSend(("a", "b", "c"), "m", "t", None, batch=True)
            ids = [n["id"] for n in storage.insert(connection, storage.row_values(send, None, now))]
        deliver = services().send_workers.deliver
        deliver.handle = probe
        deliver.run(None)
    assert outcome == ["stored"]
