"""The socket server's process life: a presence heartbeat while it runs, a clean exit on SIGTERM.

Presence entries in Redis expire unless their process refreshes them (``services.presence``): one
background task per process calls ``presence().heartbeat()`` every ``PRESENCE_TTL / 3`` seconds,
so only the entries of a process that died stop counting. It starts with the first connection.

On SIGTERM (a deploy, a scale-down) gunicorn stops accepting and then waits ``graceful_timeout``
for open connections to end. Socket.IO connections never end by themselves, so the worker would
sit out the whole timeout and be killed by the arbiter: its users "online" until their entries
expire, their disconnects never logged. Instead the process takes its users offline at once
(senders store ``pending`` from then on), answers the client events it is handling (new ones
are refused with ``service_unavailable``), closes every socket at the Engine.IO level so clients
reconnect (through the balancer, to a live process), writes the queued connection log rows, and
only then lets gunicorn go on with its own shutdown, which now finds no connection to wait for.
Connections that are not Socket.IO sessions (an idle keep-alive HTTP connection of a balancer)
still hold gunicorn's worker until ``GRACEFUL_TIMEOUT``; by then nothing is left to clean up.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from flask import Flask, current_app

from app.errors import ServiceUnavailable
from app.extensions import socketio
from app.patches import engineio
from app.registry import ClientEvents, services
from app.services.connection_logs import connection_logs
from app.services.presence import presence

log = logging.getLogger(__name__)
#: Closing rounds after gunicorn was told to stop: its listener stays open up to a second more,
#: and a socket accepted meanwhile must not keep the worker (or its presence entry) alive.
CLOSING_ROUNDS = 3
CLOSING_ROUND_SECONDS = 0.5

#: Longest wait at shutdown for the client events being handled to finish (their acks sent).
DRAIN_SECONDS = 5.0

SignalHandler = Callable[[int, FrameType | None], Any] | int | None


def start_heartbeat() -> None:
    """Start this app's presence heartbeat unless it runs already; called by every connect."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    state = services(app)
    with state.heartbeat_lock:
        if state.heartbeat_started:
            return
        state.heartbeat_started = True
    socketio.start_background_task(_heartbeat, app)


def _heartbeat(app: Flask) -> None:
    interval = app.config["PRESENCE_TTL"] / 3
    while True:
        socketio.sleep(interval)
        try:
            with app.app_context():
                presence().heartbeat()
        except Exception:  # the loop must outlive any one failure, or presence silently expires
            log.exception("presence heartbeat failed; retrying in %.1f s", interval)


def install_clean_shutdown(app: Flask) -> None:
    """Chain a clean socket shutdown in front of the current SIGTERM handler (gunicorn's).

    Called once by the serving entry point (``wsgi.py``), after gunicorn's worker installed its
    own handlers; never by ``create_app``, which tests call many times in one process.
    """
    previous: SignalHandler = signal.getsignal(signal.SIGTERM)
    started = False

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        nonlocal started
        if started:  # the arbiter forwards SIGTERM; a process manager may send it too
            return
        started = True
        # Out of the signal handler: the shutdown does network I/O and sleeps.
        socketio.start_background_task(shut_down, app, previous)

    signal.signal(signal.SIGTERM, on_sigterm)


@contextmanager
def client_event() -> Iterator[None]:
    """Around each client event: counted, so that shutdown waits for its ack; once shutdown
    has begun, refused with ``service_unavailable`` (stored nothing; send it elsewhere)."""
    events = begin_client_event()
    try:
        yield
    finally:
        end_client_event(events)


def begin_client_event(app: Flask | None = None) -> ClientEvents:
    """``client_event``'s start, for a handler that ends it itself (``end_client_event`` in a
    ``finally``): one more in flight, or ServiceUnavailable once shutdown has begun."""
    events = services(app).client_events
    with events.lock:
        if events.refusing:
            raise ServiceUnavailable(message="This server is shutting down; connect again.")
        events.in_flight += 1
    return events


def end_client_event(events: ClientEvents) -> None:
    with events.lock:
        events.in_flight -= 1


def drain_client_events() -> None:
    """Refuse new client events, then wait (up to DRAIN_SECONDS) for those being handled."""
    events = services().client_events
    with events.lock:
        events.refusing = True
    deadline = time.monotonic() + DRAIN_SECONDS
    while events.in_flight and time.monotonic() < deadline:
        socketio.sleep(0.02)


def shut_down(app: Flask, previous: SignalHandler) -> None:
    """Offline at once, answer the events in flight, close every socket, write the logs, then
    the previous handler's turn."""
    with app.app_context():
        presence().clear()
        drain_client_events()
        close_sockets()
        if callable(previous):
            previous(signal.SIGTERM, None)  # gunicorn: stop accepting, exit once idle
        for _ in range(CLOSING_ROUNDS):
            socketio.sleep(CLOSING_ROUND_SECONDS)
            close_sockets()
    if not callable(previous) and previous != signal.SIG_IGN:
        # ``python wsgi.py``: nothing else ends the process; let the default action do it.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def close_sockets() -> None:
    """Close this process's sockets (their disconnect handlers run) and write the log rows.

    Engine.IO's close, not Socket.IO's disconnect: a client told "io server disconnect" does not
    reconnect, one whose transport closed does.
    """
    server = socketio.server
    if server is not None:
        engineio.close_all(server.eio)
    connection_logs().flush()
