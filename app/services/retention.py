"""Retention: old notifications and connection logs, and expired idempotency keys, deleted in
small batches.

Each batch selects at most ``batch_size`` ids by the ``created_at`` index, deletes those rows by
primary key and commits, so no statement holds locks on more than one batch of rows and other
writers go on between batches. The ids are read first because MariaDB refuses ``LIMIT`` inside
an ``IN (SELECT ...)``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.models import ConnectionLog, IdempotencyKey, Notification, utcnow
from app.services import idempotency
from app.services.transactions import transaction

BATCH_SIZE = 1000


def purge(
    older_than: timedelta, batch_size: int = BATCH_SIZE, now: datetime | None = None
) -> dict[str, int]:
    """Delete notifications and connection logs created more than ``older_than`` ago, and
    idempotency keys past their 24 hours; returns how many rows left each table.

    Notifications go whatever their status: retention is by age. The newest notification is
    always kept: SQLite gives the largest id out again once its row is gone, and clients rely on
    ids that only increase (``lastId``, inbox cursors).
    """
    now = now or utcnow()
    return {
        "notifications": purge_table(Notification, now - older_than, batch_size, keep_newest=True),
        "connection_logs": purge_table(ConnectionLog, now - older_than, batch_size),
        "idempotency_keys": purge_table(IdempotencyKey, now - idempotency.TTL, batch_size),
    }


def purge_table(model: Any, cutoff: datetime, batch_size: int, keep_newest: bool = False) -> int:
    """Delete the rows of ``model`` created before ``cutoff`` (except the row with the largest
    id, with ``keep_newest``), one committed batch at a time; returns how many were deleted."""
    condition = model.created_at < cutoff
    if keep_newest:
        with transaction():
            newest = db.session.scalar(sa.select(sa.func.max(model.id)))
        if newest is None:
            return 0
        condition = sa.and_(condition, model.id < newest)
    removed = 0
    while True:
        with transaction():
            ids = db.session.scalars(
                sa.select(model.id).where(condition).order_by(model.created_at).limit(batch_size)
            ).all()
            if ids:
                db.session.execute(
                    sa.delete(model)
                    .where(model.id.in_(ids))
                    .execution_options(synchronize_session=False)
                )
        removed += len(ids)
        if len(ids) < batch_size:
            return removed
