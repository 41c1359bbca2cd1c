"""Database models: notifications and connection logs."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypedDict

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects import mysql

from app.extensions import db

#: Integer primary keys: BIGINT on MySQL, INTEGER on SQLite (its only auto-increment type).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: Millisecond timestamps on MySQL (plain DATETIME drops the fraction).
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
#: Binary collation: ids and keys compare byte for byte, as they do on SQLite.
MYSQL_TABLE_ARGS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def string_enum(values: type[StrEnum], name: str) -> sa.Enum:
    """A VARCHAR(16) with a CHECK of the values: the same on MariaDB and SQLite."""
    return sa.Enum(
        values,
        native_enum=False,
        length=16,
        values_callable=lambda e: [m.value for m in e],
        create_constraint=True,
        name=name,
    )


def utcnow() -> datetime:
    """Naive UTC: stored without a zone, given its ``Z`` in ``to_dict``."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds") + "Z"


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    READ = "read"


class NotificationDict(TypedDict):
    id: int
    recipientId: str
    senderId: str | None
    type: str
    message: str
    data: dict[str, Any] | None
    status: str
    createdAt: str | None
    deliveredAt: str | None
    readAt: str | None


class Notification(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "notifications"
    __table_args__ = (
        # A user's notifications newest first, and "id > lastId" for one user.
        sa.Index("ix_notifications_recipient_id", "recipient_id", "id"),
        # A user's pending (or unread) ones, oldest first.
        sa.Index("ix_notifications_recipient_status_id", "recipient_id", "status", "id"),
        # Retention purges by age.
        sa.Index("ix_notifications_created_at", "created_at"),
        MYSQL_TABLE_ARGS,
    )

    id: so.Mapped[int] = so.mapped_column(BigId, primary_key=True, autoincrement=True)
    recipient_id: so.Mapped[str] = so.mapped_column(sa.String(128))
    sender_id: so.Mapped[str | None] = so.mapped_column(sa.String(128))
    type: so.Mapped[str] = so.mapped_column(sa.String(64), default="message")
    message: so.Mapped[str] = so.mapped_column(sa.Text)
    data: so.Mapped[dict[str, Any] | None] = so.mapped_column(sa.JSON)
    status: so.Mapped[str] = so.mapped_column(string_enum(Status, "status"), default=Status.PENDING)
    created_at: so.Mapped[datetime] = so.mapped_column(Timestamp, default=utcnow)
    delivered_at: so.Mapped[datetime | None] = so.mapped_column(Timestamp)
    read_at: so.Mapped[datetime | None] = so.mapped_column(Timestamp)

    def to_dict(self) -> NotificationDict:
        """The wire form (camelCase, ISO-8601 UTC): the only serializer of a notification."""
        return {
            "id": self.id,
            "recipientId": self.recipient_id,
            "senderId": self.sender_id,
            "type": self.type,
            "message": self.message,
            "data": self.data,
            "status": Status(self.status).value,
            "createdAt": iso(self.created_at),
            "deliveredAt": iso(self.delivered_at),
            "readAt": iso(self.read_at),
        }


class ConnectionEvent(StrEnum):
    CONNECT = "connect"
    DISCONNECT = "disconnect"


class ConnectionLog(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "connection_logs"
    __table_args__ = (
        sa.Index("ix_connection_logs_user_id", "user_id", "created_at"),
        sa.Index("ix_connection_logs_created_at", "created_at"),
        MYSQL_TABLE_ARGS,
    )

    id: so.Mapped[int] = so.mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: so.Mapped[str] = so.mapped_column(sa.String(128))
    socket_id: so.Mapped[str] = so.mapped_column(sa.String(64))
    event: so.Mapped[str] = so.mapped_column(string_enum(ConnectionEvent, "event"))
    remote_address: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    user_agent: so.Mapped[str | None] = so.mapped_column(sa.String(512))
    created_at: so.Mapped[datetime] = so.mapped_column(Timestamp, default=utcnow)
