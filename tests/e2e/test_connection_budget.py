"""One process of the service holds at most ``DB_POOL_LIMIT`` database connections in all (the
request pool, the four batch workers and the connection-log writer share it), and a small limit
starves nobody: every send, connect and inbox read of a mixed load is answered.

The server runs on a database of its own, so that the count (``information_schema.PROCESSLIST``
rows on that database, sampled every 20 ms) is the server's alone.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest
import requests
from flask_migrate import upgrade

from app import MIGRATIONS, create_app
from app.extensions import db
from app.patches.socketio_redis import CONNECTIONS as MESSAGE_QUEUE_CONNECTIONS
from tests.conftest import API_KEY, MARIADB, REDIS_URL, RUN_ID, mariadb_admin, mariadb_url
from tests.connection_budget import redis_connections
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


class MixedLoad:
    """Webhook senders, inbox readers and reconnecting sockets against one server for
    ``LOAD_SECONDS``; every answer counted by kind (``webhook 201``, ``connect ok``, ...)."""

    def __init__(self, url: str, token: Callable[..., str], recipients: list[str]) -> None:
        self.url, self.token, self.recipients = url, token, recipients
        self.answers: Counter[str] = Counter()
        self.deadline = time.monotonic() + LOAD_SECONDS

    def send(self, n: int) -> None:
        session = requests.Session()
        while time.monotonic() < self.deadline:
            try:
                response = session.post(
                    f"{self.url}/webhook/notify",
                    json={"recipientId": self.recipients[n % len(self.recipients)], "message": "m"},
                    headers={"X-API-Key": API_KEY},
                    timeout=5,
                )
                self.answers[f"webhook {response.status_code}"] += 1
            except requests.RequestException as error:
                self.answers[f"webhook {type(error).__name__}"] += 1

    def read(self, n: int) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {self.token(self.recipients[n])}"}
        while time.monotonic() < self.deadline:
            try:
                response = session.get(f"{self.url}/api/notifications", headers=headers, timeout=5)
                self.answers[f"inbox {response.status_code}"] += 1
            except requests.RequestException as error:
                self.answers[f"inbox {type(error).__name__}"] += 1

    def reconnect(self, n: int) -> None:
        while time.monotonic() < self.deadline:
            try:
                # A replay (read + record), presence, and two connection-log rows.
                Listener(self.url, self.token(self.recipients[n]), 0).disconnect()
                self.answers["connect ok"] += 1
            except Exception as error:  # noqa: BLE001 - counted, and the test fails on it
                self.answers[f"connect {type(error).__name__}"] += 1

    def start(self, senders: int, readers: int, reconnecting: int) -> list[threading.Thread]:
        workers = [threading.Thread(target=self.send, args=(n,)) for n in range(senders)]
        workers += [threading.Thread(target=self.read, args=(n,)) for n in range(readers)]
        workers += [threading.Thread(target=self.reconnect, args=(n,)) for n in range(reconnecting)]
        for worker in workers:
            worker.start()
        return workers


def test_a_process_never_holds_more_than_db_pool_limit_connections_under_mixed_load(
    own_database: str, start_server: Callable[..., object], token: Callable[..., str]
) -> None:
    server: Any = start_server(
        DATABASE_URL=mariadb_url(own_database), DB_POOL_LIMIT=str(POOL_LIMIT)
    )
    load = MixedLoad(server.url, token, [f"budget-{n}" for n in range(5)])
    samples: list[int] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_connections, args=(own_database, stop, samples))
    sampler.start()
    for worker in load.start(senders=12, readers=3, reconnecting=3):
        worker.join(LOAD_SECONDS + 30)
    stop.set()
    sampler.join(5)

    answers = load.answers
    print(f"answers {dict(answers)}; connections sampled {len(samples)}, peak {max(samples)}")
    assert set(answers) == {"webhook 201", "inbox 200", "connect ok"}, answers
    assert answers["webhook 201"] > 100 and answers["connect ok"] > 3, answers
    assert 1 <= max(samples) <= POOL_LIMIT, samples


#: Redis connections a process holds besides ``REDIS_POOL_LIMIT``: the message queue's
#: (``app/patches/socketio_redis.py``: CONNECTIONS) and the control channel's listener.
REDIS_EXTRA = MESSAGE_QUEUE_CONNECTIONS + 1


def test_a_process_holds_at_most_redis_pool_limit_plus_its_message_queue_and_control_connections(
    start_server: Callable[..., object], token: Callable[..., str]
) -> None:
    pool_limit = 3
    server: Any = start_server(REDIS_POOL_LIMIT=str(pool_limit))
    arbiter = server.proc.pid
    children = subprocess.run(
        ["pgrep", "-P", str(arbiter)], capture_output=True, text=True, check=False
    ).stdout
    pids = {arbiter, *(int(pid) for pid in children.split())}
    users = [f"redis-budget-{n}" for n in range(4)]
    online = [Listener(server.url, token(user)) for user in users]  # pushes are published
    load = MixedLoad(server.url, token, users)
    samples: list[int] = []
    workers = load.start(senders=12, readers=0, reconnecting=4)
    while any(worker.is_alive() for worker in workers):
        samples.append(redis_connections(pids, REDIS_URL))
        time.sleep(0.05)
    for listener in online:
        listener.disconnect()

    answers = load.answers
    print(f"answers {dict(answers)}; Redis connections sampled {len(samples)}, peak {max(samples)}")
    assert set(answers) == {"webhook 201", "connect ok"}, answers
    assert answers["webhook 201"] > 100, answers
    assert 1 <= max(samples) <= pool_limit + REDIS_EXTRA, samples
