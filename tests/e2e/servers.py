"""Real server processes for the e2e tests, started exactly as the Procfile starts them.

``gunicorn -c gunicorn.conf.py wsgi:app`` from the project root, configured through the
environment only, on a free loopback port; ready once ``GET /health`` answers 200.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
PYTHON = ROOT / ".venv" / "bin" / "python"
START_DEADLINE = 30.0
STOP_DEADLINE = 20.0
BIND_ATTEMPTS = 3


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def health_within(
    url: str, proc: subprocess.Popen[bytes], deadline: float = START_DEADLINE
) -> requests.Response | str:
    """Poll GET ``url`` (a health URL) until it answers 200 (that answer), or ``proc`` exits or
    ``deadline`` s pass first: then why, ``exited with <status>`` or ``not healthy after ...``."""
    end = time.monotonic() + deadline
    last = "no answer"
    while time.monotonic() < end:
        if proc.poll() is not None:
            return f"exited with {proc.returncode}"
        try:
            response = requests.get(url, headers={"Connection": "close"}, timeout=5)
            if response.status_code == 200:
                return response
            last = f"{response.status_code} {response.text[:200]}"
        except requests.RequestException as error:
            last = type(error).__name__
        time.sleep(0.1)
    return f"not healthy after {deadline} s ({last})"


class ServerError(RuntimeError):
    """A server that did not start or stop as expected; the message carries its log."""


class Server:
    """One gunicorn process group (arbiter + its single worker) and its combined log."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(env)
        self.log_path = log_path
        with log_path.open("wb") as log:
            # A session of its own, so that kill() can take the worker down with the arbiter.
            self.proc = subprocess.Popen(
                [str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def describe(self) -> str:
        return f"gunicorn on {self.url} (pid {self.proc.pid}), log {self.log_path}:\n{self.log()}"

    def wait_healthy(self, deadline: float = START_DEADLINE) -> None:
        """Return once GET /health is 200; ServerError with the log if the process dies or
        the deadline passes first."""
        answer = health_within(f"{self.url}/health", self.proc, deadline)
        if isinstance(answer, str):
            raise ServerError(f"{answer}: {self.describe()}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self) -> None:
        """SIGTERM to the arbiter, as a process manager sends it; gunicorn passes it on."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> int | None:
        """The arbiter's exit status, or None if it is still running after ``deadline`` s."""
        try:
            return self.proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL to the arbiter and its worker at once: a crash, nothing gets to clean up."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=STOP_DEADLINE)
        # The worker may outlive the arbiter by a few ms, its connections (to Redis) open; the
        # listening socket both hold closes with the last of them.
        end = time.monotonic() + STOP_DEADLINE
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                return
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL for the whole group if it is not gone within the deadline."""
        self.terminate()
        if self.wait(STOP_DEADLINE) is None:
            self.kill()
        else:  # an orphaned worker must not outlive the test
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


def get(server: Server, path: str) -> requests.Response:
    """GET on a new connection that the server closes after answering (no idle keep-alive
    connection left to hold a stopping worker)."""
    return requests.get(f"{server.url}{path}", headers={"Connection": "close"}, timeout=5)


def server_env(base: Mapping[str, str], **overrides: str | None) -> dict[str, str]:
    """The process environment for one server: ``base`` plus a free port, then ``overrides``
    (None removes a variable)."""
    port = free_port()
    env = (
        dict(os.environ)
        | dict(base)
        | {
            "PORT": str(port),
            "HOST": "127.0.0.1",
            # The socket client sends Origin: http://127.0.0.1:<port>; SERVER_URL allows it.
            "SERVER_URL": f"http://127.0.0.1:{port}",
        }
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def start(base: Mapping[str, str], log_dir: Path, **overrides: str | None) -> Server:
    """Start one server and wait until it is healthy (ServerError, with its log, if not).

    A port taken by someone else between ``free_port`` and gunicorn's bind means another try.
    """
    for attempt in range(1, BIND_ATTEMPTS + 1):
        env = server_env(base, **overrides)
        server = Server(env, log_dir / f"gunicorn-{env['PORT']}.log")
        try:
            server.wait_healthy()
        except ServerError:
            server.stop()
            if "Address already in use" in server.log() and attempt < BIND_ATTEMPTS:
                continue
            raise
        return server
    raise AssertionError("unreachable")


#: ``start_server(**env_overrides)`` (the ``start_server`` fixtures).
StartServer = Callable[..., Server]
