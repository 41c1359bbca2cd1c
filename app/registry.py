"""The per-process services of one app: made once by the factory, found through ``services()``.

Everything a process holds for its life (its Redis client, presence, the batch workers, caches,
the user of each socket, the client events in flight) is a field of ``Services``, one object in
``app.extensions["notify"]``: a newcomer finds all of it in this list, and each app a test
builds starts with its own. The factory fills it (``app.register_services``); modules read
their part through a typed accessor (``presence()``, ``live_sessions()``, ...) or ``services()``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:
    from app.redis_client import Client
    from app.services.connection_logs import ConnectionLogWriter
    from app.services.presence import Presence
    from app.services.rate_limits import SocketLimits
    from app.services.replay import ReplayWorkers
    from app.services.revocations import RevocationCache
    from app.services.sending import SendWorkers
    from app.sockets.control import ControlChannel
    from app.sockets.live import LiveSessions

KEY = "notify"


@dataclass(slots=True)
class ClientEvents:
    """The client events being handled, counted so that shutdown waits for their acks
    (``sockets.lifecycle``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    #: Shutdown has begun: new events are refused.
    refusing: bool = False


@dataclass(slots=True)
class Services:
    #: This process's id in presence entries and in the name of its channel.
    process_id: str
    redis: Client | None
    presence: Presence
    socket_limits: SocketLimits
    send_workers: SendWorkers
    replay_workers: ReplayWorkers
    connection_logs: ConnectionLogWriter
    revocations: RevocationCache
    live_sessions: LiveSessions
    #: None without Redis and the message queue: a revocation is then this process's alone.
    control: ControlChannel | None
    log_formatter: logging.Formatter
    #: The user of each authenticated socket of this process, by sid.
    socket_users: dict[str, str] = field(default_factory=dict)
    client_events: ClientEvents = field(default_factory=ClientEvents)
    heartbeat_lock: threading.Lock = field(default_factory=threading.Lock)
    heartbeat_started: bool = False

    def close(self) -> None:
        """End the batch workers and give their connections back (an app thrown away, in
        tests: its pooled connections can then be disposed of)."""
        for batcher in (*self.send_workers, *self.replay_workers):
            batcher.close()


def services(app: Flask | None = None) -> Services:
    """The services of ``app`` (default: the current app)."""
    found: Services = (current_app if app is None else app).extensions[KEY]
    return found
