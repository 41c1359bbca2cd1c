"""The serving process's settings (gunicorn.conf.py, the worker's timeouts) come from the same
environment as the app's: the process environment over ``.env``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ("PORT", "HOST", "WORKER_CONNECTIONS", "GRACEFUL_TIMEOUT", "LOG_LEVEL")
SETTINGS += ("CLIENT_TIMEOUT", "PING_INTERVAL", "PING_TIMEOUT", "APP_ENV")
#: Run in a copy of the project: gunicorn's settings as gunicorn reads them (the file executed),
#: then the worker's handler module, imported after gevent's patching as the worker does.
PROBE = """
import json, runpy
conf = runpy.run_path("gunicorn.conf.py")
from gevent import monkey
monkey.patch_all()
from app.patches import gevent as patched
print(json.dumps({
    "bind": conf["bind"],
    "worker_connections": conf["worker_connections"],
    "graceful_timeout": conf["graceful_timeout"],
    "loglevel": conf["loglevel"],
    "client_timeout": patched.CLIENT_TIMEOUT,
    "websocket_timeout": patched.WEBSOCKET_TIMEOUT,
}))
"""


@pytest.mark.unit
def test_a_value_set_only_in_dotenv_reaches_gunicorn_and_its_worker(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("gunicorn.conf.py", "gunicorn_worker.py", "pyproject.toml"):
        shutil.copy(ROOT / name, project / name)
    for package in ("app", "config"):
        shutil.copytree(
            ROOT / package,
            project / package,
            ignore=shutil.ignore_patterns("node_modules", "__pycache__"),
        )
    (project / ".env").write_text(
        "PORT=3999\nHOST=127.0.0.7\nWORKER_CONNECTIONS=123\nGRACEFUL_TIMEOUT=7\n"
        "LOG_LEVEL=warning\nCLIENT_TIMEOUT=3\nPING_INTERVAL=4\nPING_TIMEOUT=2.5\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env["PYTHONPATH"] = str(project)
    probe = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", PROBE],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout.strip().splitlines()[-1]) == {
        "bind": "127.0.0.7:3999",
        "worker_connections": 123,
        "graceful_timeout": 7,
        "loglevel": "warning",
        "client_timeout": 3.0,
        "websocket_timeout": 4 + 2.5 + 5,
    }
