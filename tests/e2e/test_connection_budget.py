"""One process of the service holds at most ``DB_POOL_LIMIT`` database connections in all (the
request pool, the four batch workers and the connection-log writer share it), and a small limit
starves nobody: every send, connect and inbox read of a mixed load is answered.

The server runs on a database of its own, so that the count (``information_schema.PROCESSLIST``
rows on that database, sampled every 20 ms) is the server's alone.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pymysql
import pytest
import requests
from flask_migrate import upgrade

from app import MIGRATIONS, create_app
from app.extensions import db
from tests.conftest import API_KEY, MARIADB, RUN_ID, mariadb_admin, mariadb_url
from tests.e2e.clients import Listener

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]

POOL_LIMIT = 3
LOAD_SECONDS = 6.0


@pytest.fixture
def own_database(base_env: dict[str, str]) -> Iterator[str]:
    name = f"notify_test_{RUN_ID}_budget"
    mariadb_admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    url = mariadb_url(name)
    migrator = create_app("testing", base_env | {"DATABASE_URL": url})
    with migrator.app_context():
        upgrade(directory=MIGRATIONS)
        db.engine.dispose()
    try:
        yield name
    finally:
        mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`")


def sample_connections(database: str, stop: threading.Event, peaks: list[int]) -> None:
    connection = pymysql.connect(**MARIADB, autocommit=True)
    query = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s"
    try:
        with connection.cursor() as cursor:
            while not stop.wait(0.02):
                cursor.execute(query, (database,))
                row = cursor.fetchone()
                peaks.append(int(row[0]) if row else 0)
    finally:
        connection.close()


def test_a_process_never_holds_more_than_db_pool_limit_connections_under_mixed_load(
    own_database: str, start_server: Callable[..., object], token: Callable[..., str]
) -> None:
    server = start_server(DATABASE_URL=mariadb_url(own_database), DB_POOL_LIMIT=str(POOL_LIMIT))
    url = server.url  # type: ignore[attr-defined]
    answers: Counter[str] = Counter()
    samples: list[int] = []
    stop = threading.Event()
    deadline = time.monotonic() + LOAD_SECONDS

    def send(n: int) -> None:
        session = requests.Session()
        while time.monotonic() < deadline:
            try:
                response = session.post(
                    f"{url}/webhook/notify",
                    json={"recipientId": f"budget-{n % 5}", "message": "m"},
                    headers={"X-API-Key": API_KEY},
                    timeout=5,
                )
                answers[f"webhook {response.status_code}"] += 1
            except requests.RequestException as error:
                answers[f"webhook {type(error).__name__}"] += 1

    def read(n: int) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {token(f'budget-{n}')}"}
        while time.monotonic() < deadline:
            try:
                response = session.get(f"{url}/api/notifications", headers=headers, timeout=5)
                answers[f"inbox {response.status_code}"] += 1
            except requests.RequestException as error:
                answers[f"inbox {type(error).__name__}"] += 1

    def reconnect(n: int) -> None:
        while time.monotonic() < deadline:
            try:
                listener = Listener(url, token(f"budget-{n}"), 0)  # replays: read + record
                listener.disconnect()  # two connection-log rows
                answers["connect ok"] += 1
            except Exception as error:  # noqa: BLE001 - counted, and the test fails on it
                answers[f"connect {type(error).__name__}"] += 1

    sampler = threading.Thread(target=sample_connections, args=(own_database, stop, samples))
    sampler.start()
    workers = [threading.Thread(target=send, args=(n,)) for n in range(12)]
    workers += [threading.Thread(target=read, args=(n,)) for n in range(3)]
    workers += [threading.Thread(target=reconnect, args=(n,)) for n in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(LOAD_SECONDS + 30)
    stop.set()
    sampler.join(5)

    print(f"answers {dict(answers)}; connections sampled {len(samples)}, peak {max(samples)}")
    assert set(answers) == {"webhook 201", "inbox 200", "connect ok"}, answers
    assert answers["webhook 201"] > 100 and answers["connect ok"] > 3, answers
    assert 1 <= max(samples) <= POOL_LIMIT, samples
