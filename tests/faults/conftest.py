"""Fixtures of the fault and abuse suite: real gunicorn processes (``tests/e2e/servers.py``),
real MariaDB and Redis, plus what a test may break: a private ``redis-server`` and a TCP proxy in
front of MariaDB. The shared MariaDB and Redis serve other people's tests and are never stopped.

Every test here is marked ``e2e`` and ``mariadb`` (the embedded run deselects them). The counts
each scenario measured are printed at the end of the run, whatever ``-s`` says.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask

from tests.conftest import MARIADB, Rows
from tests.e2e import servers
from tests.e2e.clients import close_listeners
from tests.e2e.conftest import log_problems, prefix, redis_db, server_base_env  # noqa: F401
from tests.e2e.servers import StartServer
from tests.faults.load import REPORT, Fleet, Ledger
from tests.faults.private_redis import PrivateRedis
from tests.faults.proxy import TcpProxy

#: Small timeouts so that every scenario fits in seconds (all are variables the app reads).
FAST = {
    "PRESENCE_TTL": "3",
    "REPLAY_LIMIT": "5000",
    "GRACEFUL_TIMEOUT": "10",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.mariadb)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("fault suite: what every scenario counted")
        for line in REPORT:
            terminalreporter.write_line(line)


@pytest.fixture
def start_server(
    server_base_env: dict[str, str],  # noqa: F811
    app: Flask,
    tmp_path: Path,
) -> Iterator[Callable[..., servers.Server]]:
    """``start_server(allow=(), **env)``: a healthy gunicorn on ``FAST`` settings, stopped at
    the end of the test. As in tests/e2e, a traceback or error in its log fails the test,
    except lines matching one of ``allow`` (regular expressions): the errors a scenario causes
    on purpose, such as "database unavailable" while the database is stopped."""
    started: list[tuple[servers.Server, Sequence[str]]] = []

    def start(allow: Sequence[str] = (), **overrides: str | None) -> servers.Server:
        server = servers.start(server_base_env | FAST, tmp_path, **overrides)
        started.append((server, allow))
        return server

    yield start
    close_listeners()  # the clients a test left, before their servers
    for server, _ in started:
        server.stop()
    problems = []
    for server, allow in started:
        print(server.describe())  # pytest shows it only for a failed test
        expected = [re.compile(pattern) for pattern in allow]
        unexpected = [
            line
            for line in log_problems(server.log())
            if not any(pattern.search(line) for pattern in expected)
        ]
        if unexpected:
            problems.append(f"{server.url}: {unexpected[:3]}")
    if problems:
        pytest.fail(f"unexpected errors in server logs: {problems}")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    yield server
    server.close()


@pytest.fixture
def db_proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy((MARIADB["host"], MARIADB["port"]))
    yield proxy
    proxy.close()


@pytest.fixture
def proxied_database_url(database_url: str, db_proxy: TcpProxy) -> str:
    """The run's database, reached through ``db_proxy``."""
    host = f"@{MARIADB['host']}:{MARIADB['port']}/"
    assert host in database_url
    return database_url.replace(host, f"@127.0.0.1:{db_proxy.port}/")


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Ledger:
    return Ledger(request.node.name)


@pytest.fixture
def fleet(token: Callable[..., str], start_server: StartServer) -> Iterator[Fleet]:
    """Clients closed before the servers stop (this fixture depends on ``start_server``)."""
    made = Fleet(token)
    yield made
    made.close()


def newest_id(rows: Rows) -> int:
    return max((row["id"] for row in rows("notifications")), default=0)


def worker_pid(server: servers.Server) -> int:
    """The pid of the gunicorn worker (the arbiter's only child): the process that serves."""
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text()
    return int(children.split()[0])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


class Presence:
    """The presence sets (``services.presence``) under one test's Redis prefix."""

    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        self.prefix = key_prefix

    def members(self, users: Iterable[str]) -> set[str]:
        """Every entry of the users' sets, expired or not (``<process id>|<socket>``)."""
        return {m for u in users for m in self.client.zrange(f"{self.prefix}:presence:{u}", 0, -1)}

    def entries_of(self, users: Iterable[str], process: str, live_only: bool = False) -> int:
        """The users' entries of ``process`` (a ``<pid>-<uuid>`` process id); with
        ``live_only``, the unexpired ones."""
        now = time.time()
        return sum(
            1
            for user in users
            for member, score in self.client.zrange(
                f"{self.prefix}:presence:{user}", 0, -1, withscores=True
            )
            if member.startswith(f"{process}|") and (score > now or not live_only)
        )


@pytest.fixture
def presence(redis_db: redis.Redis, prefix: str) -> Presence:  # noqa: F811 - the fixtures
    return Presence(redis_db, prefix)
