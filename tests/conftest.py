"""Fixtures: a real database (MariaDB per run, or SQLite), real Redis, apps and clients.

``TEST_BACKEND=mariadb`` (default): a uniquely named MariaDB database created for the run and
dropped at its end, Redis with a key prefix of the run's own. ``TEST_BACKEND=embedded``: the
embedded profile, SQLite file and in-process rooms and limits; tests marked ``mariadb`` are
deselected by the Makefile in that run.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from flask_socketio import SocketIOTestClient
from hypothesis import HealthCheck, settings
from socketio import packet
from socketio.manager import Manager

from app import MIGRATIONS, create_app
from app.extensions import db, socketio
from app.registry import services
from app.security.tokens import issue
from tests import connection_budget
from tests.connection_budget import (  # noqa: F401 - the budget's hooks
    pytest_runtest_logstart,
    pytest_sessionfinish,
    pytest_terminal_summary,
)
from tests.e2e.redis_cluster import (  # noqa: F401 - one cluster per session
    cluster_db,
    redis_cluster,
)

BACKEND = os.environ.get("TEST_BACKEND", "mariadb")
MARIADB = dict(
    host=os.environ.get("TEST_DB_HOST", "127.0.0.1"),
    port=int(os.environ.get("TEST_DB_PORT", "3306")),
    user=os.environ.get("TEST_DB_USER", "root"),
    password=os.environ.get("TEST_DB_PASSWORD", ""),
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
JWT_SECRET = "test-secret-" + "x" * 40
API_KEY = "test-webhook-key-0123456789abcdef"
_prefixes = itertools.count()
#: ``rows(table)``: every row of a table, straight from the database (the ``rows`` fixture).
Rows = Callable[[str], list[dict[str, Any]]]
#: Hypothesis settings of the property tests: the same examples every run, no deadline per
#: example, nothing saved between runs; ``@settings(REPRODUCIBLE, max_examples=N)``.
REPRODUCIBLE = settings(
    deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
)
#: How long a test waits for what happens in the background (a push, a log row) by default.
DEADLINE = 5.0
#: The contract's notification object, field by field.
NOTIFICATION_KEYS = frozenset(
    {"id", "recipientId", "senderId", "type", "message", "data", "status"}
    | {"createdAt", "deliveredAt", "readAt"}
)


def mariadb_url(name: str) -> str:
    auth = MARIADB["user"] + (f":{MARIADB['password']}" if MARIADB["password"] else "")
    return f"mysql+pymysql://{auth}@{MARIADB['host']}:{MARIADB['port']}/{name}?charset=utf8mb4"


def mariadb_admin(sql: str) -> None:
    connection = pymysql.connect(**MARIADB)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


def pytest_report_header() -> str:
    return f"notify-server test backend: {BACKEND} (run {RUN_ID})"


#: The fixtures through which a test reaches the backend: every app, client and row fixture
#: depends on them (``redis_url`` alone is no sign: the autouse clean-up asks for it).
BACKEND_FIXTURES = frozenset({"database_url", "base_env"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``BACKEND_FREE_TESTS=skip`` (``make test``'s embedded pass, right after the MariaDB
    pass ran them), leave out the unit tests that reach no backend: their answer is the same
    on either, and running them twice cost half a minute of a suite near its 15."""
    if os.environ.get("BACKEND_FREE_TESTS") != "skip":
        return
    unit = Path(__file__).parent / "unit"
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        free = not BACKEND_FIXTURES & set(getattr(item, "fixturenames", ()))
        (dropped if free and item.path.is_relative_to(unit) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if BACKEND == "embedded":
        yield f"sqlite:///{tmp_path_factory.mktemp('db')}/notify.sqlite3"
        return
    name = f"notify_test_{RUN_ID}"
    mariadb_admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    connection_budget.start(MARIADB, name)
    try:
        yield mariadb_url(name)
    finally:
        connection_budget.stop()
        mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    return None if BACKEND == "embedded" else REDIS_URL


@pytest.fixture(scope="session", autouse=True)
def redis_cleanup(redis_url: str | None) -> Iterator[None]:
    """Remove every key this run made (its prefix is its own); never FLUSHALL."""
    yield
    if redis_url:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"notify-test-{RUN_ID}*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture(scope="session")
def base_env(
    database_url: str, redis_url: str | None, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    env = {
        "APP_ENV": "testing",
        "DATABASE_URL": database_url,
        "JWT_SECRET": JWT_SECRET,
        "WEBHOOK_API_KEY": API_KEY,
        "HTTP_RATE_LIMIT_MAX": "100000",
        "SOCKET_RATE_LIMIT_POINTS": "100000",
        "CONNECT_RATE_LIMIT": "100000/minute",
        "ALLOWED_ORIGINS": "http://allowed.example",
        "LOG_LEVEL": "WARNING",
        # Per process; tests/connection_budget.py holds the whole run to 60 at once.
        "DB_POOL_LIMIT": "4",
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def fresh_prefix() -> str:
    """A Redis prefix of this run and this test: limits and rooms never leak between tests."""
    return f"notify-test-{RUN_ID}-{next(_prefixes)}"


@pytest.fixture(scope="session")
def migrated(base_env: dict[str, str]) -> None:
    """Build the schema the way users do: the migrations, not create_all()."""
    app = create_app("testing", base_env)
    with app.app_context():
        upgrade(directory=MIGRATIONS)


@pytest.fixture(scope="session")
def cleaner(base_env: dict[str, str], migrated: None) -> Flask:
    """An app on the run's database, used only to delete rows between tests."""
    return create_app(None, base_env)


@pytest.fixture
def make_app(base_env: dict[str, str], cleaner: Flask) -> Iterator[Callable[..., Flask]]:
    """``make_app(**overrides)`` builds an app on the run's database (APP_ENV from the
    overrides, default testing). Every row is deleted after the test, whoever wrote it
    (the app, a gunicorn process or a background writer)."""

    made: list[Flask] = []

    def factory(**overrides: str) -> Flask:
        env = base_env | {"REDIS_PREFIX": fresh_prefix()} | overrides
        made.append(create_app(None, {k: v for k, v in env.items() if v is not None}))
        return made[-1]

    yield factory
    for made_app in made:  # their connections go now, not when the app is collected
        services(made_app).close()
        with made_app.app_context():
            db.engine.dispose()
    with cleaner.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        db.session.remove()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app without the Redis message queue (the Socket.IO test client refuses one);
    presence and limits still use Redis in the MariaDB run."""
    return make_app(MESSAGE_QUEUE="0")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def token(app: Flask) -> Callable[..., str]:
    def make(user: str, expires_in: int | None = None) -> str:
        with app.app_context():
            return issue(user, expires_in)

    return make


def wait_until(
    predicate: Callable[[], Any], deadline: float = DEADLINE, interval: float = 0.05
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or ``deadline`` s pass
    (returns the last falsy answer)."""
    end = time.monotonic() + deadline
    while True:
        answer = predicate()
        if answer or time.monotonic() >= end:
            return answer
        time.sleep(interval)


def poll(
    read: Callable[[], Any],
    until: Callable[[Any], bool],
    deadline: float = DEADLINE,
    interval: float = 0.02,
) -> Any:
    """``read()`` once ``until`` holds for it; fails at the deadline with the last value."""
    last: list[Any] = []

    def ready() -> bool:
        last[:] = [read()]
        return until(last[0])

    assert wait_until(ready, deadline, interval), last[0]
    return last[0]


class SocketClient(SocketIOTestClient):
    """Flask-SocketIO's test client, usable on a server with a Redis message queue, that keeps
    what the server sent with a refused handshake and every event it received.

    The stock client refuses any pub/sub manager, although python-socketio hands an emit to this
    process's own sockets before publishing it, so pushes to test clients still arrive; the
    listener thread only relays other processes' emits. The stock ``__init__`` also calls
    ``manager.initialize()`` itself, which on a pub/sub manager starts one more listener thread
    per client. A stand-in manager takes that one call; the server initialises the real manager
    once, on its first connect, as it does in production.
    """

    def __init__(self, app: Flask, auth: dict[str, Any]) -> None:
        self.real_manager = socketio.server.manager
        self.connect_error: Any = None
        self.sid: str | None = None
        self.history: list[dict[str, Any]] = []
        socketio.server.manager = Manager()
        try:
            super().__init__(app, socketio, auth=auth)
        finally:
            socketio.server.manager = self.real_manager

    def connect(
        self,
        namespace: str | None = None,
        query_string: str | None = None,
        headers: dict[str, str] | None = None,
        auth: Any = None,
    ) -> None:
        server = self.socketio.server
        server.manager = self.real_manager
        send = server._send_packet

        def keep_refusal(eio_sid: str, pkt: packet.Packet) -> None:
            if eio_sid == self.eio_sid and pkt.packet_type == packet.CONNECT_ERROR:
                self.connect_error = pkt.data
            send(eio_sid, pkt)

        server._send_packet = keep_refusal
        try:
            super().connect(namespace, query_string, headers, auth)
        finally:
            server._send_packet = send
        self.sid = server.manager.sid_from_eio_sid(self.eio_sid, namespace or "/")

    def refusal(self) -> tuple[str, dict[str, Any]]:
        """The refused handshake's ``err.message`` and ``err.data``, as a client sees them."""
        assert not self.is_connected()
        assert isinstance(self.connect_error, dict), self.connect_error
        return self.connect_error["message"], self.connect_error.get("data") or {}

    def events(self, name: str) -> list[Any]:
        """Every ``name`` event received so far (the first argument of each), those that came
        before the server disconnected the socket included (``get_received`` refuses then)."""
        while self.queue:  # popped one by one: the server may append from another thread
            self.history.append(self.queue.pop(0))
        return [pkt["args"][0] for pkt in self.history if pkt["name"] == name]

    def wait_for(self, name: str, count: int = 1) -> list[Any]:
        """The first ``count`` ``name`` events, waiting for them until the deadline."""
        found: list[Any] = poll(lambda: self.events(name), until=lambda f: len(f) >= count)
        return found


@pytest.fixture
def open_socket(app: Flask, token: Callable[..., str], rows: Rows) -> Iterator[OpenSocket]:
    """``open_socket(app, user, **auth)``: a socket of ``user`` on ``app`` (None: no token).

    Also how tests reach apps built with ``make_app``; the sockets of one test must all be on the
    app built last, since every ``create_app`` rebinds the one global ``socketio``. At the end
    it closes the sockets and waits for their log rows: they are written in the background, and
    would otherwise land after the tables were emptied, in the next test's rows.
    """
    clients: list[SocketClient] = []

    def make(target: Flask, user: str | None, **auth: Any) -> SocketClient:
        if user is not None and "token" not in auth:
            auth["token"] = token(user)
        client = SocketClient(target, auth)
        clients.append(client)
        return client

    yield make
    for client in clients:
        if client.is_connected():
            client.disconnect()
    database = app.config["SQLALCHEMY_DATABASE_URI"]
    expected = {
        (client.sid, event)
        for client in clients
        if client.sid and client.app.config["SQLALCHEMY_DATABASE_URI"] == database
        for event in ("connect", "disconnect")
    }
    poll(
        lambda: {(row["socket_id"], row["event"]) for row in rows("connection_logs")},
        until=lambda found: expected <= found,
    )
    # An app with a socket lives on in its background tasks (log writer, presence heartbeat):
    # close its pooled connections now, or every test would keep a few MariaDB connections open.
    for used in ({id(app): app} | {id(client.app): client.app for client in clients}).values():
        with used.app_context():
            db.engine.dispose()
    for client in clients:
        SocketIOTestClient.clients.pop(client.eio_sid, None)


#: ``open_socket(app, user, **auth)`` (the ``open_socket`` fixture).
OpenSocket = Callable[..., SocketClient]


@pytest.fixture
def connect(app: Flask, open_socket: OpenSocket) -> Callable[..., SocketClient]:
    """``connect(user, **auth)``: :func:`open_socket` on the ``app`` fixture."""

    def make(user: str | None, **auth: Any) -> SocketClient:
        return open_socket(app, user, **auth)

    return make


@pytest.fixture
def rows(app: Flask) -> Rows:
    """``rows(table)``: every row of a table, straight from the database."""

    def read(table: str) -> list[dict[str, Any]]:
        with app.app_context():
            result = db.session.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))  # noqa: S608
            found = [dict(row._mapping) for row in result]
            db.session.remove()
            return found

    return read


def webhook(client: FlaskClient, body: Any, key: str | None = API_KEY, **kwargs: Any) -> Any:
    headers = ({"X-API-Key": key} if key else {}) | kwargs.pop("headers", {})
    return client.post("/webhook/notify", json=body, headers=headers, **kwargs)


def webhook_raw(
    client: FlaskClient, data: str | bytes, content_type: str = "application/json"
) -> Any:
    """POST ``data`` as it is (a body the JSON encoder would not write) with the test key."""
    headers = {"X-API-Key": API_KEY, "Content-Type": content_type}
    return client.post("/webhook/notify", data=data, headers=headers)
