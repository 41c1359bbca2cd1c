"""Submitting, replaying and reading notifications: the only code that writes them.

The webhook and the ``send_notification`` socket handler both call ``submit``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm.attributes import set_committed_value

from app.errors import DATABASE_UNAVAILABLE, ServiceUnavailable, ValidationError
from app.extensions import db
from app.models import Notification, NotificationDict, Status, utcnow
from app.services import delivery
from app.services.presence import presence
from app.services.validation import require_object, validate_notification

log = logging.getLogger(__name__)
MAX_READ_IDS = 1000


@contextmanager
def transaction() -> Iterator[None]:
    """Commit the session's work, or roll all of it back; an unreachable database is a 503."""
    try:
        yield
        db.session.commit()
    except DATABASE_UNAVAILABLE as error:
        db.session.rollback()
        log.error("database unavailable: %s", type(error).__name__)
        raise ServiceUnavailable() from error
    except BaseException:
        db.session.rollback()
        raise


def submit(raw: object, *, sender_id: str | None) -> NotificationDict:
    """Validate, store, then deliver one notification; returns it as stored.

    Loss is impossible by the order of the steps: the row is committed as ``pending`` before
    anyone is asked whether the recipient is online. A recipient who registers as online after
    our presence check replays pending rows after registering, so sees this committed row; one
    registered before it is in the room and gets the live push. Only after the push is the row
    marked ``delivered``; if that second commit fails the row stays ``pending`` and is replayed
    later (a duplicate, which the contract allows and clients drop by id).
    """
    new = validate_notification(raw, current_app.config["MAX_MESSAGE_LENGTH"])
    row = Notification(
        recipient_id=new.recipient_id,
        sender_id=sender_id,
        type=new.type,
        message=new.message,
        data=new.data,
        status=Status.PENDING,
        created_at=utcnow(),
    )
    with transaction():
        db.session.add(row)
    deliver([row])
    return row.to_dict()


def deliver(rows: Sequence[Notification]) -> None:
    """Push stored rows whose recipients are online, then record them as delivered."""
    online = presence().online(row.recipient_id for row in rows)
    pushed = [row for row in rows if row.recipient_id in online]
    if pushed:
        _push_then_record(pushed, pushed, delivery.push)


def replay(user_id: str, last_id: int | None, sid: str) -> int:
    """Push to one socket what its user missed, oldest first; returns how many were pushed.

    With ``last_id``: every notification of the user newer than it. Without: every pending one.
    Pending ones pushed here become ``delivered``.
    """
    limit = current_app.config["REPLAY_LIMIT"]
    query = sa.select(Notification).where(Notification.recipient_id == user_id)
    if last_id is not None:
        query = query.where(Notification.id > last_id)
    else:
        query = query.where(Notification.status == Status.PENDING)
    with transaction():
        rows = db.session.scalars(query.order_by(Notification.id).limit(limit)).all()
    pending = [row for row in rows if row.status == Status.PENDING]
    _push_then_record(rows, pending, lambda items: delivery.push_to_socket(sid, items))
    return len(rows)


def _push_then_record(
    rows: Sequence[Notification],
    pending: Sequence[Notification],
    push: Callable[[Iterable[NotificationDict]], None],
) -> None:
    """Push ``rows`` (``pending`` ones shown as delivered), then record ``pending`` as delivered.

    Recording after pushing means a crash in between leaves rows pending, to be pushed again:
    a duplicate, never a loss. The UPDATE only moves pending rows, so one read meanwhile stays read.
    """
    now = utcnow()
    for row in pending:  # changed in memory only: the session must not write them again
        set_committed_value(row, "status", Status.DELIVERED)
        set_committed_value(row, "delivered_at", now)
    push(row.to_dict() for row in rows)
    if not pending:
        return
    try:
        with transaction():
            db.session.execute(
                sa.update(Notification)
                .where(
                    Notification.id.in_([row.id for row in pending]),
                    Notification.status == Status.PENDING,
                )
                .values(status=Status.DELIVERED, delivered_at=now)
                .execution_options(synchronize_session=False)
            )
    except ServiceUnavailable:
        log.warning("could not record %d notifications as delivered", len(pending))


def parse_read_request(raw: object) -> list[int] | None:
    """``{"ids": [...]}`` gives the ids; ``{"all": true}`` gives None (every notification)."""
    payload = require_object(raw)
    unknown = sorted(payload.keys() - {"ids", "all"})
    details = {str(name)[:64]: "is not an allowed field" for name in unknown}
    ids = payload.get("ids")
    everything = payload.get("all")
    if everything is not None and everything is not True:
        details["all"] = "must be true"
    if (ids is None) == (everything is None):
        details["ids"] = "give either ids or all: true"
    elif ids is not None and not (
        isinstance(ids, list)
        and 1 <= len(ids) <= MAX_READ_IDS
        and all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids)
    ):
        details["ids"] = f"must be a list of 1-{MAX_READ_IDS} positive integers"
    if details:
        raise ValidationError(details, "The read request is not valid.")
    return None if everything else sorted(set(ids))


def mark_read(user_id: str, raw: object, skip_sid: str | None = None) -> int:
    """Mark the caller's own notifications read and tell their other sockets; returns the count.

    The recipient condition is in the UPDATE itself, so ids of other users' notifications are
    silently not counted: the answer never tells whether such an id exists.
    """
    ids = parse_read_request(raw)
    statement = sa.update(Notification).where(
        Notification.recipient_id == user_id, Notification.status != Status.READ
    )
    if ids is not None:
        statement = statement.where(Notification.id.in_(ids))
    with transaction():
        result = db.session.execute(
            statement.values(status=Status.READ, read_at=utcnow()).execution_options(
                synchronize_session=False
            )
        )
    updated = int(result.rowcount or 0)  # type: ignore[attr-defined]
    payload: dict[str, Any] = {"all": True} if ids is None else {"ids": ids}
    delivery.announce_read(user_id, payload, skip_sid=skip_sid)
    return updated
