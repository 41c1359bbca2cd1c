"""The suite's MariaDB connection budget: at most ``BUDGET`` connections to the run's database at
once, so that two suites (or a suite beside a running service) fit in a stock MariaDB's
``max_connections`` of 151.

A sampler counts the run's own connections (``information_schema.PROCESSLIST`` rows on the run's
database, whoever opened them: test apps, gunicorn servers, the fault suite's proxy) every
``INTERVAL`` seconds. The summary prints that peak, and the server's ``Max_used_connections``
against its value at the start (which counts every client of the server, other suites too).
Over the budget the run fails.
"""

from __future__ import annotations

import os
import subprocess
import threading
from typing import Any
from urllib.parse import urlsplit

import pymysql
import pytest

BUDGET = int(os.environ.get("TEST_DB_CONNECTION_BUDGET", "60"))
INTERVAL = 0.1


class Sampler:
    def __init__(self, settings: dict[str, Any], database: str) -> None:
        self.settings = settings
        self.database = database
        self.peak = 0
        self.peak_test = ""
        self.current_test = ""
        self.by_test: dict[str, int] = {}
        self.samples = 0
        self.baseline = self.server_max_used()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="connection-budget", daemon=True)

    def server_max_used(self) -> int:
        connection = pymysql.connect(**self.settings)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SHOW GLOBAL STATUS LIKE 'Max_used_connections'")
                row = cursor.fetchone()
                return int(row[1]) if row else 0
        finally:
            connection.close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        connection = pymysql.connect(**self.settings, autocommit=True)
        query = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s"
        try:
            with connection.cursor() as cursor:
                while not self._stop.wait(INTERVAL):
                    cursor.execute(query, (self.database,))
                    row = cursor.fetchone()
                    count = int(row[0]) if row else 0
                    test = self.current_test
                    self.by_test[test] = max(self.by_test.get(test, 0), count)
                    if count > self.peak:
                        self.peak, self.peak_test = count, test
                    self.samples += 1
        finally:
            connection.close()

    def report(self) -> str:
        heaviest = sorted(self.by_test.items(), key=lambda item: -item[1])[:3]
        return (
            f"MariaDB connections of this run: peak {self.peak} (budget {BUDGET}, "
            f"{self.samples} samples, during {self.peak_test or 'set-up'}); server "
            f"Max_used_connections {self.server_max_used()} (was {self.baseline} at the start; "
            f"counts every client of the server)\nheaviest tests: "
            + ", ".join(f"{test} {count}" for test, count in heaviest)
        )


def redis_connections(pids: set[int], redis_url: str) -> int:
    """Established TCP connections of the processes ``pids`` to the Redis at ``redis_url``
    (``ss -tnp``)."""
    location = urlsplit(redis_url)
    listing = subprocess.run(
        ["ss", "-tnpH", "state", "established", "dst", f"{location.hostname}:{location.port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(1 for line in listing.splitlines() if any(f"pid={pid}," in line for pid in pids))


_sampler: Sampler | None = None


def start(settings: dict[str, Any], database: str) -> None:
    global _sampler
    _sampler = Sampler(settings, database)
    _sampler.start()


def stop() -> None:
    if _sampler is not None:
        _sampler.stop()


def pytest_runtest_logstart(nodeid: str) -> None:
    if _sampler is not None:
        _sampler.current_test = nodeid


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _sampler is not None:
        terminalreporter.write_sep("=", "connection budget")
        terminalreporter.write_line(_sampler.report())
        if _sampler.peak > BUDGET:
            terminalreporter.write_line(f"over the budget of {BUDGET}: this run fails", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _sampler is not None:
        _sampler.stop()
        if _sampler.peak > BUDGET:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
