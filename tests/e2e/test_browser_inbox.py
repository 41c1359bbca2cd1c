"""The demo inbox page in headless Chromium (Debian's ``/usr/bin/chromium``, driven by
playwright-core from ``tests/e2e/browser/``) against a real gunicorn server, MariaDB and Redis.

Needs ``npm ci`` in ``app/web`` (the page's Socket.IO client) and in ``tests/e2e/browser``
(playwright-core; it never downloads a browser). Screenshots go to ``test-output/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY
from tests.e2e import servers

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]

BROWSER_SUITE = servers.ROOT / "tests" / "e2e" / "browser"
PAGE_CLIENT = servers.ROOT / "app" / "web" / "node_modules" / "socket.io-client"
OUTPUT_DIR = servers.ROOT / "test-output"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
NODE_DEADLINE = 90


def require_tools() -> str:
    """The node executable; a failure naming the missing piece and how to install it."""
    node = shutil.which("node")
    missing = [
        message
        for absent, message in (
            (node is None, "node (Node.js 20+)"),
            (not CHROMIUM.is_file(), f"{CHROMIUM} (apt-get install -y chromium)"),
            (not PAGE_CLIENT.is_dir(), "the page's socket.io-client (run npm ci in app/web)"),
            (
                not (BROWSER_SUITE / "node_modules" / "playwright-core").is_dir(),
                "playwright-core (run npm ci in tests/e2e/browser)",
            ),
        )
        if absent
    ]
    if missing:
        pytest.fail("browser suite cannot run, missing: " + "; ".join(missing))
    assert node is not None
    return node


def test_browser_inbox_shows_live_notifications_and_reads_across_tabs_refreshes_and_signs_out(
    start_server: Callable[..., servers.Server],
    token: Callable[..., str],
    rows: Callable[[str], list[dict[str, Any]]],
) -> None:
    node = require_tools()
    # A short refresh window and leeway: the page's refresh of a 3 s token is seen at once.
    server = start_server(
        APP_ENV="testing", DEMO_PAGE="1", SESSION_REFRESH_WINDOW="2", JWT_LEEWAY="1"
    )
    user, other = f"browser-{uuid.uuid4().hex[:8]}", f"friend-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", "inbox.test.mjs"],
        cwd=BROWSER_SUITE,
        env=os.environ
        | {
            "BASE_URL": server.url,
            "USER_ID": user,
            "USER_TOKEN": token(user),
            "OTHER_USER": other,
            "WEBHOOK_API_KEY": API_KEY,
            "OUTPUT_DIR": str(OUTPUT_DIR),
            "CHROMIUM": str(CHROMIUM),
        },
        capture_output=True,
        text=True,
        timeout=NODE_DEADLINE,
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr

    for name in (
        "browser-inbox-unread.png",
        "browser-inbox-read.png",
        "browser-inbox-signed-out.png",
    ):
        shot = OUTPUT_DIR / name
        assert shot.is_file() and shot.stat().st_size > 0, shot
        assert f"screenshot: {shot}" in result.stdout
    stored = rows("notifications")
    received = [row for row in stored if row["recipient_id"] == user]
    assert len(received) == 2
    assert {row["status"] for row in received} == {"read"}
    assert all(row["sender_id"] is None and row["type"] == "browser-e2e" for row in received)
    sent = [row for row in stored if row["recipient_id"] == other]
    assert len(sent) == 1
    assert sent[0]["sender_id"] == user
    assert sent[0]["message"] == "hello from the browser"
