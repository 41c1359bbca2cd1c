"""Fixtures for the real-process tests: gunicorn servers, Socket.IO clients, Redis, the database.

``start_server`` depends on the ``app`` fixture of ``tests/conftest.py``, whose teardown deletes
every row the servers wrote; the servers are stopped before that, and the clients before them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask

from tests.conftest import REDIS_URL, fresh_prefix
from tests.e2e import servers
from tests.e2e.clients import Listener, close_listeners

#: Limits no test reaches unless it sets its own.
HIGH_LIMITS = {
    "HTTP_RATE_LIMIT_MAX": "1000000",
    "WEBHOOK_RATE_LIMIT": "1000000/minute",
    "SOCKET_RATE_LIMIT_POINTS": "1000000",
    "CONNECT_RATE_LIMIT": "1000000/minute",
}
#: What a server log must never contain (the app's and gunicorn's log formats).
LOG_PROBLEM = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b")
#: Logged at ERROR by python-engineio when a polling client's last request arrives after its
#: session was closed (or was ended for a protocol fault): the client's lateness, not a server
#: fault.
BENIGN = re.compile(r"Session is disconnected|Invalid session")


def log_problems(text: str) -> list[str]:
    return [
        line for line in text.splitlines() if LOG_PROBLEM.search(line) and not BENIGN.search(line)
    ]


@pytest.fixture
def prefix() -> str:
    """The Redis prefix (keys and pub/sub channel) shared by every server of one test."""
    return fresh_prefix()


@pytest.fixture
def server_base_env(base_env: dict[str, str], prefix: str, migrated: None) -> dict[str, str]:
    return (
        base_env
        | HIGH_LIMITS
        | {
            "APP_ENV": "production",
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": prefix,
            "MESSAGE_QUEUE": "1",  # in case a developer's .env turns it off
            "LOG_LEVEL": "WARNING",
        }
    )


@pytest.fixture
def start_server(
    server_base_env: dict[str, str], app: Flask, tmp_path: Path
) -> Iterator[Callable[..., servers.Server]]:
    """``start_server(**env_overrides)``: a healthy gunicorn, stopped at the end of the test.

    Each server's log is printed at teardown (pytest shows it when the test fails), and a
    traceback or an error in any log fails the test: the contract allows none.
    """
    started: list[servers.Server] = []

    def start(**overrides: str | None) -> servers.Server:
        server = servers.start(server_base_env, tmp_path, **overrides)
        started.append(server)
        return server

    yield start
    close_listeners()  # the clients a test left, before their servers
    for server in started:
        server.stop()
    problems = []
    for server in started:
        print(server.describe())  # pytest shows it only for a failed test
        if log_problems(server.log()):
            problems.append(server.url)
    if problems:
        pytest.fail(f"error in the log of {', '.join(problems)}; see the captured output")


@pytest.fixture
def listen(
    token: Callable[..., str], start_server: Callable[..., servers.Server]
) -> Iterator[Callable[..., Listener]]:
    """``listen(server_or_url, user, last_id=None, transport="websocket", cookies=None)``: a
    connected :class:`Listener` authenticated as ``user``, disconnected at the end of the test
    (before the servers stop: this fixture depends on ``start_server``)."""
    made: list[Listener] = []

    def make(
        target: servers.Server | str,
        user: str,
        last_id: int | None = None,
        transport: str | list[str] = "websocket",
        cookies: dict[str, str] | None = None,
    ) -> Listener:
        url = target if isinstance(target, str) else target.url
        listener = Listener(url, token(user), last_id, transport, cookies)
        made.append(listener)
        return listener

    yield make
    for listener in made:
        listener.disconnect()


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    client.close()
