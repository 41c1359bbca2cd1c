"""Connection log rows, written off the handshake path by one background writer per process.

``record`` only queues; a background task inserts what has queued in one multi-row INSERT.
A failed write is logged and dropped: a log row is never worth a refused connection.
"""

from __future__ import annotations

import logging
import queue
from typing import Any

import sqlalchemy as sa
from flask import Flask

from app.extensions import db, socketio
from app.models import ConnectionEvent, ConnectionLog, utcnow
from app.registry import services

log = logging.getLogger(__name__)
BATCH = 500
#: A Core INSERT, made once: the ORM's bulk insert of the same rows cost a third more CPU.
INSERT = sa.insert(ConnectionLog.__table__)


class ConnectionLogWriter:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self.started = False

    def record(
        self,
        user_id: str,
        sid: str,
        event: ConnectionEvent,
        remote_address: str | None,
        user_agent: str | None,
    ) -> None:
        self.queue.put(
            {
                "user_id": user_id,
                "socket_id": sid[:64],
                "event": event,
                "remote_address": (remote_address or "")[:64] or None,
                "user_agent": (user_agent or "")[:512] or None,
                "created_at": utcnow(),
            }
        )
        if not self.started:
            self.started = True
            socketio.start_background_task(self._run)

    def _run(self) -> None:
        while True:
            rows = [self.queue.get()]
            while len(rows) < BATCH:
                try:
                    rows.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self.write(rows)

    def flush(self) -> None:
        """Write what has queued now, in the caller's task: the shutdown path, which cannot
        count on the background writer getting another turn before the process exits."""
        rows: list[dict[str, Any]] = []
        while True:
            try:
                rows.append(self.queue.get_nowait())
            except queue.Empty:
                break
        for start in range(0, len(rows), BATCH):
            self.write(rows[start : start + BATCH])

    def write(self, rows: list[dict[str, Any]]) -> None:
        with self.app.app_context():
            try:
                with db.engine.begin() as connection:
                    connection.execute(INSERT, rows)
            except Exception as error:
                log.error(
                    "could not write %d connection log rows: %s", len(rows), type(error).__name__
                )


def connection_logs() -> ConnectionLogWriter:
    return services().connection_logs
