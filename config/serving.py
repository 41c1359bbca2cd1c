"""The serving process's settings: read by gunicorn.conf.py, the worker's handler
(``app.patches.gevent``), ``wsgi.py`` and the app's profiles alike, from the same environment
(the process environment over ``.env``, ``config.environment``).

Parsed here once: a value set only in ``.env`` reaches gunicorn and its worker as it reaches
the app. A bad value falls back to its default here, and the app's start-up check
(``config.checks``) names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from config.environment import read_environment
from config.parsing import EnvReader


@dataclass(frozen=True, slots=True)
class Serving:
    HOST: str
    PORT: int
    #: Connections a worker accepts at once (each socket one slot of its greenlet pool).
    WORKER_CONNECTIONS: int
    #: Seconds gunicorn waits for requests in flight at a stop.
    GRACEFUL_TIMEOUT: int
    LOG_LEVEL: str
    #: Seconds of silence allowed while reading a request line or headers (slowloris).
    CLIENT_TIMEOUT: float
    #: Engine.IO heartbeat: a client that answers no ping within PING_INTERVAL + PING_TIMEOUT
    #: seconds is closed (a vanished or never-reading client frees its socket and queue).
    #: Fractions are allowed (the protocol test suites use 0.3 and 0.2).
    PING_INTERVAL: float
    PING_TIMEOUT: float

    @property
    def websocket_timeout(self) -> float:
        """A websocket's read timeout: one ping window and some slack."""
        return self.PING_INTERVAL + self.PING_TIMEOUT + 5


def read_serving(read: EnvReader) -> Serving:
    return Serving(
        HOST=read.text("HOST", "0.0.0.0"),  # noqa: S104 - every interface, as the Node server
        PORT=read.integer("PORT", 3000, minimum=1),
        WORKER_CONNECTIONS=read.integer("WORKER_CONNECTIONS", 20000, minimum=1),
        GRACEFUL_TIMEOUT=read.integer("GRACEFUL_TIMEOUT", 15),
        LOG_LEVEL=read.text("LOG_LEVEL", "INFO").upper(),
        CLIENT_TIMEOUT=read.seconds("CLIENT_TIMEOUT", 10, minimum=0.05),
        PING_INTERVAL=read.seconds("PING_INTERVAL", 25, minimum=0.05),
        PING_TIMEOUT=read.seconds("PING_TIMEOUT", 20, minimum=0.05),
    )


def serving_settings(env: Mapping[str, str] | None = None) -> Serving:
    """The settings from ``env`` (default: the process environment over ``.env``)."""
    return read_serving(EnvReader(read_environment() if env is None else env))
