"""Fixtures: a real database (MariaDB per run, or SQLite), real Redis, apps and clients.

``TEST_BACKEND=mariadb`` (default): a uniquely named MariaDB database created for the run and
dropped at its end, Redis with a key prefix of the run's own. ``TEST_BACKEND=embedded``: the
embedded profile, SQLite file and in-process rooms and limits; tests marked ``mariadb`` are
deselected by the Makefile in that run.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from flask_socketio import SocketIOTestClient

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
from tests.e2e.redis_cluster import redis_cluster  # noqa: F401 - one cluster per session

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


@pytest.fixture
def connect(app: Flask, token: Callable[..., str]) -> Iterator[Callable[..., SocketIOTestClient]]:
    """``connect(user, **auth)``: a Socket.IO test client authenticated as ``user``."""
    clients: list[SocketIOTestClient] = []

    def make(user: str | None, **auth: Any) -> SocketIOTestClient:
        if user is not None and "token" not in auth:
            auth["token"] = token(user)
        test_client = socketio.test_client(app, auth=auth)
        clients.append(test_client)
        return test_client

    yield make
    for test_client in clients:
        if test_client.is_connected():
            test_client.disconnect()


@pytest.fixture
def rows(app: Flask) -> Callable[..., list[dict[str, Any]]]:
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
