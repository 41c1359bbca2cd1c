"""The Procfile as a Heroku-style host runs it: ``release`` on an empty database, then ``web``
with ``PORT`` set, through ``sh -c`` with the Procfile's own text and the host's config vars
(``DATABASE_URL`` as ``mysql://``, ``REDIS_URL``, secrets, ``APP_ENV=production``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
import requests

from tests.conftest import API_KEY, JWT_SECRET, MARIADB, REDIS_URL, fresh_prefix, mariadb_admin
from tests.e2e import servers
from tests.e2e.conftest import log_problems

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]

PROCFILE = servers.ROOT / "Procfile"
RELEASE_DEADLINE = 60
START_DEADLINE = 30.0
STOP_DEADLINE = 20.0


def procfile() -> dict[str, str]:
    """Process type → command line, as a host parses the file (``name: command``)."""
    processes = {}
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


@pytest.fixture
def empty_database() -> Iterator[str]:
    name = f"notify_procfile_{uuid.uuid4().hex[:10]}"
    mariadb_admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield name
    finally:
        mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`")


def tables(database: str) -> set[str]:
    connection = pymysql.connect(**MARIADB, database=database)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW TABLES")
            return {row[0] for row in cursor.fetchall()}
    finally:
        connection.close()


def host_env(database: str, port: int) -> dict[str, str]:
    """What the host gives the dyno: its config vars and PORT, the app's bin first on PATH
    (a buildpack's ``.venv/bin``/``.heroku/python/bin``); nothing of the test's own env."""
    auth = MARIADB["user"] + (f":{MARIADB['password']}" if MARIADB["password"] else "")
    return {
        "PATH": f"{servers.GUNICORN.parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108
        "LANG": "C.UTF-8",
        "PORT": str(port),
        "DATABASE_URL": f"mysql://{auth}@{MARIADB['host']}:{MARIADB['port']}/{database}",
        "REDIS_URL": REDIS_URL,
        # Not a host variable: this test's own key space, removed with the run's keys.
        "REDIS_PREFIX": fresh_prefix(),
        "JWT_SECRET": JWT_SECRET,
        "WEBHOOK_API_KEY": API_KEY,
        "APP_ENV": "production",
        "ALLOWED_ORIGINS": "https://app.example.com",
    }


def release(command: str, env: dict[str, str]) -> None:
    result = subprocess.run(  # noqa: S603
        ["/bin/sh", "-c", command],  # noqa: S607
        cwd=servers.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RELEASE_DEADLINE,
        check=False,
    )
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, f"release `{command}` exited {result.returncode}:\n{output}"
    assert not log_problems(output), output


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> requests.Response:
    answer = servers.health_within(url, proc, START_DEADLINE)
    if isinstance(answer, str):
        pytest.fail(f"web {answer}:\n{log.read_text(errors='replace')}")
    return answer


def group_gone(pgid: int, deadline: float) -> bool:
    """True once no process of the group is left, False if some remain after ``deadline`` s."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_procfile_declares_release_and_web() -> None:
    processes = procfile()
    assert {"release", "web"} <= processes.keys(), processes


def test_procfile_release_then_web_as_a_heroku_style_host_runs_them(
    empty_database: str, tmp_path: Path
) -> None:
    processes = procfile()
    port = servers.free_port()
    env = host_env(empty_database, port)

    release(processes["release"], env)
    assert {"notifications", "connection_logs", "alembic_version"} <= tables(empty_database)
    release(processes["release"], env)  # run on every deploy: a second run changes nothing

    log = tmp_path / "web.log"
    with log.open("wb") as out:
        web = subprocess.Popen(  # noqa: S603
            ["/bin/sh", "-c", processes["web"]],  # noqa: S607
            cwd=servers.ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        response = wait_healthy(web, f"http://127.0.0.1:{port}/health", log)
        body = response.json()
        assert body["status"] == "ok", body
        assert body["database"] == "ok", body
        assert body["redis"] == "ok", body
        # The host stops a dyno with SIGTERM to all its processes, SIGKILL after a grace period.
        # The shell itself may die of the signal (dash does not exec the command); what counts
        # is that gunicorn shuts down cleanly and nothing of the dyno is left.
        os.killpg(web.pid, signal.SIGTERM)
        code = web.wait(timeout=STOP_DEADLINE)
        assert code in (0, -signal.SIGTERM), code
        assert group_gone(web.pid, STOP_DEADLINE), "processes left after SIGTERM"
        text = log.read_text(errors="replace")
        assert "Shutting down: Master" in text, text
        assert not log_problems(text), text
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(web.pid, signal.SIGKILL)
        web.wait(timeout=STOP_DEADLINE)
