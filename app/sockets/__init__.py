"""Socket.IO handlers, registered on import: connection life cycle, client events, live sessions."""

from __future__ import annotations

from app.sockets import connection, events, live

__all__ = ["connection", "events", "live"]
