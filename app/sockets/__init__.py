"""Socket.IO handlers, registered on import: connection life cycle and client events."""

from __future__ import annotations

from app.sockets import connection, events

__all__ = ["connection", "events"]
