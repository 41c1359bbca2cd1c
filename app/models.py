"""Database models: notifications, connection logs, webhook idempotency keys, revocations."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypedDict

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects import mysql

from app.extensions import db

#: The dialect names of MySQL and MariaDB, which share their column types and statements here.
MYSQL_DIALECTS = ("mysql", "mariadb")
#: Integer primary keys: BIGINT on MySQL, INTEGER on SQLite (its only auto-increment type).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: Millisecond timestamps on MySQL (plain DATETIME drops the fraction).
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), *MYSQL_DIALECTS)
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
    """A notification's delivery state, as the contract names it."""

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
        return notification_dict(self)


def notification_dict(row: Any) -> NotificationDict:
    """The wire form (camelCase, ISO-8601 UTC) of a ``Notification`` or a row of its table: the
    only serializer of a notification."""
    return {
        "id": row.id,
        "recipientId": row.recipient_id,
        "senderId": row.sender_id,
        "type": row.type,
        "message": row.message,
        "data": row.data,
        "status": Status(row.status).value,
        "createdAt": iso(row.created_at),
        "deliveredAt": iso(row.delivered_at),
        "readAt": iso(row.read_at),
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


#: Large binary values: LONGBLOB on MySQL (its BLOB stops at 64 KiB).
LargeBlob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), *MYSQL_DIALECTS)


class IdempotencyKey(db.Model):  # type: ignore[name-defined,misc]
    """A webhook ``Idempotency-Key`` and the answer given to its first request.

    The unique constraint is what makes two racing requests create one set of notifications: the
    row is inserted in the same transaction as the notifications it answers for. The API key is
    never stored, only its ``key_id``. The answer body is zlib-compressed UTF-8 JSON: a batch
    answer repeats the message and data once per recipient, and compressed it stays far below
    MariaDB's ``max_allowed_packet`` whatever the message.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        sa.UniqueConstraint("api_key_id", "idempotency_key"),
        # Retention removes keys older than 24 hours.
        sa.Index("ix_idempotency_keys_created_at", "created_at"),
        MYSQL_TABLE_ARGS,
    )

    id: so.Mapped[int] = so.mapped_column(BigId, primary_key=True, autoincrement=True)
    api_key_id: so.Mapped[str] = so.mapped_column(sa.String(64))
    idempotency_key: so.Mapped[str] = so.mapped_column(sa.String(255))
    #: SHA-256 (hex) of the request body as canonical JSON, without ``apiKey``.
    request_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    response_status: so.Mapped[int] = so.mapped_column(sa.SmallInteger)
    response_body: so.Mapped[bytes] = so.mapped_column(LargeBlob)
    created_at: so.Mapped[datetime] = so.mapped_column(Timestamp, default=utcnow)
    #: Set once the answer is final (after delivery); until then a repeat waits for it.
    completed_at: so.Mapped[datetime | None] = so.mapped_column(Timestamp)


class Revocation(db.Model):  # type: ignore[name-defined,misc]
    """A ``POST /webhook/revoke``: every token of ``user_id`` issued at or before
    ``issued_before`` is refused, and the sockets opened with one are ended.

    Rows are only ever added; a user's cut-off is the latest ``issued_before`` of their rows.
    Every process keeps them all in memory (``services.revocations``) and reads new ones by
    ``created_at``.
    """

    __tablename__ = "revocations"
    __table_args__ = (
        # Each process's refresh: the rows written since its last read.
        sa.Index("ix_revocations_created_at", "created_at"),
        MYSQL_TABLE_ARGS,
    )

    id: so.Mapped[int] = so.mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: so.Mapped[str] = so.mapped_column(sa.String(128))
    issued_before: so.Mapped[datetime] = so.mapped_column(Timestamp)
    created_at: so.Mapped[datetime] = so.mapped_column(Timestamp, default=utcnow)
