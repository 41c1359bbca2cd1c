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


#: Redis connections a process holds besides ``REDIS_POOL_LIMIT``: the message queue's
#: (``app/patches/socketio_redis.py``: CONNECTIONS) and the control channel's listener.
REDIS_EXTRA = MESSAGE_QUEUE_CONNECTIONS + 1


def redis_connections(pids: set[int], port: int) -> int:
    """Established TCP connections of ``pids`` to the Redis port (``ss -tnp``)."""
    listing = subprocess.run(
        ["ss", "-tnpH", "state", "established", "dst", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(1 for line in listing.splitlines() if any(f"pid={pid}," in line for pid in pids))


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
    port = int(REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    answers: Counter[str] = Counter()
    samples: list[int] = []
    deadline = time.monotonic() + LOAD_SECONDS
    users = [f"redis-budget-{n}" for n in range(4)]
    online = [Listener(server.url, token(user)) for user in users]  # pushes are published

    def send(n: int) -> None:
        session = requests.Session()
        while time.monotonic() < deadline:
            try:
                response = session.post(
                    f"{server.url}/webhook/notify",
                    json={"recipientId": users[n % len(users)], "message": "m"},
                    headers={"X-API-Key": API_KEY},
                    timeout=5,
                )
                answers[f"webhook {response.status_code}"] += 1
            except requests.RequestException as error:
                answers[f"webhook {type(error).__name__}"] += 1

    def reconnect(n: int) -> None:
        while time.monotonic() < deadline:
            try:
                Listener(server.url, token(f"redis-budget-c{n}")).disconnect()  # presence
                answers["connect ok"] += 1
            except Exception as error:  # noqa: BLE001 - counted, and the test fails on it
                answers[f"connect {type(error).__name__}"] += 1

    workers = [threading.Thread(target=send, args=(n,)) for n in range(12)]
    workers += [threading.Thread(target=reconnect, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    while any(worker.is_alive() for worker in workers):
        samples.append(redis_connections(pids, port))
        time.sleep(0.05)
    for worker in workers:
        worker.join()
    for listener in online:
        listener.disconnect()

    print(f"answers {dict(answers)}; Redis connections sampled {len(samples)}, peak {max(samples)}")
    assert set(answers) == {"webhook 201", "connect ok"}, answers
    assert answers["webhook 201"] > 100, answers
    assert 1 <= max(samples) <= pool_limit + REDIS_EXTRA, samples
