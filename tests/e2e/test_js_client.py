"""The JavaScript client suite (``tests/e2e/js``, Node's test runner and ``socket.io-client``)
against real gunicorn servers started as the Procfile starts them, on MariaDB and Redis.

Two processes share the test's Redis prefix: the main one, and one with a low socket event limit
(also used as the second process of the cross-process check). Needs ``node`` and ``npm`` on
PATH; ``npm ci`` runs here when ``node_modules`` is missing. Node's output is the failure message.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import API_KEY, JWT_SECRET
from tests.e2e import servers

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]

JS = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node")
NPM = shutil.which("npm")
#: Events a user may send on the limited server within SOCKET_RATE_LIMIT_DURATION (60 s).
LIMITED_POINTS = 4
NPM_DEADLINE = 90  # under pytest-timeout's 120 s for the whole test
NODE_DEADLINE = 60

#: In CI (``REQUIRE_NODE=1``) a missing node is a failure, not a skip.
needs_node = pytest.mark.skipif(
    (NODE is None or NPM is None) and not os.environ.get("REQUIRE_NODE"),
    reason="node and npm are not on PATH (set REQUIRE_NODE=1 to fail instead)",
)


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """``npm ci`` from the committed lockfile, once, if the packages are not installed yet."""
    if NODE is None or NPM is None:
        pytest.fail("REQUIRE_NODE is set but node or npm is not on PATH")
    installed = JS / "node_modules" / "socket.io-client"
    if not installed.is_dir():
        result = subprocess.run(  # noqa: S603
            [str(NPM), "ci", "--no-audit", "--no-fund"],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=NPM_DEADLINE,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return installed


#: Files that need servers of their own configuration (``test_live_sessions_suite``).
LIVE_SESSIONS = "live_sessions.test.mjs"
#: The live-session servers' settings: a small replay limit and leeway keep the checks short.
REPLAY_LIMIT = 4
JWT_LEEWAY = 1
REFRESH_WINDOW = 2


def run_node(
    env: dict[str, str], files: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    files = files or sorted(
        path.name for path in JS.glob("*.test.mjs") if path.name != LIVE_SESSIONS
    )
    try:
        return subprocess.run(  # noqa: S603
            [str(NODE), "--test", "--test-reporter=spec", *files],
            cwd=JS,
            env=os.environ | env,
            capture_output=True,
            text=True,
            timeout=NODE_DEADLINE,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(
            f"node --test still running after {NODE_DEADLINE} s:\n{error.stdout}\n{error.stderr}",
            pytrace=False,
        )


@needs_node
def test_javascript_client_suite(
    node_modules: Path, start_server: Callable[..., servers.Server]
) -> None:
    main = start_server()
    limited = start_server(
        SOCKET_RATE_LIMIT_POINTS=str(LIMITED_POINTS), SOCKET_RATE_LIMIT_DURATION="60"
    )
    run_suite(
        {
            "NOTIFY_URL": main.url,
            "NOTIFY_URL_2": limited.url,
            "NOTIFY_LIMITED_URL": limited.url,
            "NOTIFY_SOCKET_RATE_LIMIT_POINTS": str(LIMITED_POINTS),
            "NOTIFY_JWT_SECRET": JWT_SECRET,
            "NOTIFY_API_KEY": API_KEY,
        }
    )


@needs_node
def test_live_sessions_suite(
    node_modules: Path, start_server: Callable[..., servers.Server]
) -> None:
    """Expiry, refresh, revocation and truncated replays, on two processes sharing Redis."""
    settings = {
        "REPLAY_LIMIT": str(REPLAY_LIMIT),
        "JWT_LEEWAY": str(JWT_LEEWAY),
        "SESSION_REFRESH_WINDOW": str(REFRESH_WINDOW),
    }
    first, second = start_server(**settings), start_server(**settings)
    run_suite(
        {
            "NOTIFY_LIVE_URL": first.url,
            "NOTIFY_LIVE_URL_2": second.url,
            "NOTIFY_REPLAY_LIMIT": str(REPLAY_LIMIT),
            "NOTIFY_JWT_LEEWAY": str(JWT_LEEWAY),
            "NOTIFY_REFRESH_WINDOW": str(REFRESH_WINDOW),
            "NOTIFY_JWT_SECRET": JWT_SECRET,
            "NOTIFY_API_KEY": API_KEY,
        },
        [LIVE_SESSIONS],
    )


def run_suite(env: dict[str, str], files: list[str] | None = None) -> None:
    """Run the JS suite (or some of its files) and fail on any failed or skipped check."""
    result = run_node(env, files)
    print(result.stdout)  # the spec report, shown by pytest -rA or on failure
    if result.returncode != 0:
        pytest.fail(
            f"node --test failed ({result.returncode}):\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    summary = dict(
        re.findall(r"^\S+ (tests|pass|fail|cancelled|skipped|todo) (\d+)$", result.stdout, re.M)
    )
    assert summary.get("fail") == "0", result.stdout
    assert summary.get("skipped") == "0", f"a check did not run:\n{result.stdout}"
    assert int(summary.get("pass", "0")) > 0, result.stdout
