"""Submitting, replaying and reading notifications: the only code that writes them.

The ``send_notification`` socket handler calls ``submit`` (one recipient); the webhook calls
``submit_many`` (``recipientId`` or ``recipientIds``, with an optional idempotency key).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm.attributes import set_committed_value

from app.errors import ServiceUnavailable, ValidationError
from app.extensions import db
from app.models import Notification, NotificationDict, Status, utcnow
from app.observability import metrics
from app.services import delivery, idempotency
from app.services.idempotency import Answer
from app.services.presence import presence
from app.services.transactions import transaction
from app.services.validation import (
    NewSend,
    idempotency_key,
    require_object,
    validate_notification,
    validate_send,
)

log = logging.getLogger(__name__)
MAX_READ_IDS = 1000
#: Rows per INSERT statement of a batch: a 1000-recipient send with the longest message and data
#: stays a few MB per statement, well under MariaDB's max_allowed_packet (16 MiB by default).
INSERT_PAGE_SIZE = 100


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
    send = NewSend((new.recipient_id,), new.message, new.type, new.data, batch=False)
    with transaction():
        rows = store(send, sender_id)
    metrics.notifications_stored(rows)
    deliver(rows)
    return rows[0].to_dict()


def submit_many(
    raw: object,
    *,
    sender_id: str | None,
    idempotency_key_header: str | None = None,
    owner: str = "",
) -> Answer:
    """Validate, store, then deliver a send to ``recipientId`` or to each of ``recipientIds``;
    returns the answer: 201 with ``{success, notification}``, or ``{success, notifications}`` in
    the order the recipients were given (a repeated id counts once).

    Every row goes in with multi-row INSERTs in one transaction: all are stored, or none. The
    order of storing and delivering is ``submit``'s, with one presence round trip for all.

    With ``idempotency_key_header`` (the ``Idempotency-Key`` value; ``owner`` is the API key's
    id) a repeat of the same body within 24 hours gets the first answer and stores nothing, and
    another body gets 409 ``conflict``; see ``services.idempotency`` for how a race is decided.
    """
    key = idempotency_key(idempotency_key_header)
    send = validate_send(raw, current_app.config["MAX_MESSAGE_LENGTH"])
    if key is None:
        with transaction():
            rows = store(send, sender_id)
        metrics.notifications_stored(rows)
        deliver(rows)
        return answer_for(send, rows)
    claim = idempotency.Claim(owner, key, idempotency.fingerprint(require_object(raw)))
    for _attempt in range(idempotency.ATTEMPTS):
        earlier = idempotency.earlier_answer(claim)
        if earlier is not None:
            return earlier
        try:
            with transaction():
                rows = store(send, sender_id)
                idempotency.reserve(claim, answer_for(send, rows))
        except idempotency.Taken:
            continue  # another request with this key committed first: its answer is ours
        metrics.notifications_stored(rows)
        deliver(rows)
        answer = answer_for(send, rows)
        idempotency.complete(claim, answer)
        return answer
    raise ServiceUnavailable(message="The request could not be completed; try it again.")


def store(send: NewSend, sender_id: str | None) -> list[Notification]:
    """Insert one pending row per recipient in the caller's transaction; returns them in the
    order of ``send.recipient_ids``.

    INSERT ... RETURNING (MariaDB 10.5+, SQLite 3.35+) gives the ids and every column back
    without a second query. RETURNING does not promise row order, so rows are matched to their
    recipients, which are distinct.
    """
    now = utcnow()
    values = [
        {
            "recipient_id": recipient,
            "sender_id": sender_id,
            "type": send.type,
            "message": send.message,
            "data": send.data,
            "status": Status.PENDING,
            "created_at": now,
        }
        for recipient in send.recipient_ids
    ]
    statement = (
        sa.insert(Notification)
        .returning(Notification)
        .execution_options(insertmanyvalues_page_size=INSERT_PAGE_SIZE)
    )
    by_recipient = {row.recipient_id: row for row in db.session.scalars(statement, values)}
    return [by_recipient[recipient] for recipient in send.recipient_ids]


def answer_for(send: NewSend, rows: Sequence[Notification]) -> Answer:
    """The webhook's 201 body for the stored ``rows``, as they are now."""
    if send.batch:
        return Answer(201, {"success": True, "notifications": [row.to_dict() for row in rows]})
    return Answer(201, {"success": True, "notification": rows[0].to_dict()})


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
    metrics.notifications_replayed(len(rows), len(pending))
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
    elif ids is not None:
        numbers = [_id_number(i) for i in ids] if isinstance(ids, list) else []
        if not 1 <= len(numbers) <= MAX_READ_IDS or None in numbers:
            details["ids"] = f"must be a list of 1-{MAX_READ_IDS} positive integer ids"
    if details:
        raise ValidationError(details, "The read request is not valid.")
    return None if everything else sorted({int(i) for i in ids})


def _id_number(value: object) -> int | None:
    """A notification id (1 to BIGINT's maximum); ``5.0`` counts, as JSON Schema counts it."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID:
        return value
    return None


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


# The inbox: a user's own notifications, a page at a time.

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_ID = 2**63 - 1  # BIGINT: a larger cursor is refused rather than sent to the database
#: The ``status`` filters of the inbox; ``unread`` is everything not yet read.
STATUS_FILTERS: dict[str, tuple[Status, ...]] = {
    "pending": (Status.PENDING,),
    "delivered": (Status.DELIVERED,),
    "read": (Status.READ,),
    "unread": (Status.PENDING, Status.DELIVERED),
}
PAGE_PARAMETERS = frozenset({"limit", "before", "status"})


class PageRequest(NamedTuple):
    limit: int = DEFAULT_PAGE_SIZE
    before: int | None = None
    status: str | None = None


class Page(NamedTuple):
    notifications: list[NotificationDict]
    #: The id to pass as ``before`` for the next page; None when this page is the last.
    next_cursor: int | None


def _decimal(value: str, low: int, high: int) -> int | None:
    """``value`` as an integer in ``low..high`` when it is written in ASCII digits only."""
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(high)):
        return None
    number = int(value)
    return number if low <= number <= high else None


def parse_page_request(query: Mapping[str, Sequence[str]]) -> PageRequest:
    """The inbox query (each parameter's values, as given) checked, every problem at once.

    ``limit`` 1-100 (default 20), ``before`` a positive id, ``status`` one of STATUS_FILTERS;
    each at most once. Unknown parameters are refused by name, like unknown body fields.
    """
    unknown = sorted(query.keys() - PAGE_PARAMETERS)
    details = {str(name)[:64]: "is not an allowed parameter" for name in unknown}
    values: dict[str, str] = {}
    for name in sorted(PAGE_PARAMETERS & query.keys()):
        given = query[name]
        if len(given) == 1:
            values[name] = given[0]
        else:
            details[name] = "must be given once"
    limit = _decimal(values.get("limit", str(DEFAULT_PAGE_SIZE)), 1, MAX_PAGE_SIZE)
    if limit is None and "limit" in values:
        details["limit"] = f"must be an integer from 1 to {MAX_PAGE_SIZE}"
    before = _decimal(values["before"], 1, MAX_ID) if "before" in values else None
    if before is None and "before" in values:
        details["before"] = "must be a positive integer id"
    status = values.get("status")
    if status is not None and status not in STATUS_FILTERS:
        details["status"] = "must be one of " + ", ".join(STATUS_FILTERS)
    if details:
        raise ValidationError(details, "The query is not valid.")
    return PageRequest(limit or DEFAULT_PAGE_SIZE, before, status)


def page_query(user_id: str, limit: int, before: int | None, status: str | None) -> sa.Select[Any]:
    """One page of the user's notifications, newest first, with one row more than ``limit``
    (its presence says there is a next page).

    Served by ``ix_notifications_recipient_id`` (recipient_id, id) without a filter and by
    ``ix_notifications_recipient_status_id`` (recipient_id, status, id) with one; the recipient
    condition is always there, so a cursor never reaches another user's rows.
    """
    query = sa.select(Notification).where(Notification.recipient_id == user_id)
    if status is not None:
        query = query.where(Notification.status.in_(STATUS_FILTERS[status]))
    if before is not None:
        query = query.where(Notification.id < before)
    return query.order_by(Notification.id.desc()).limit(limit + 1)


def list_for(user_id: str, limit: int, before: int | None, status: str | None) -> Page:
    """The user's notifications older than ``before`` (all without it), newest first, at most
    ``limit``, filtered by ``status`` (a STATUS_FILTERS name) when given."""
    with transaction():
        rows = db.session.scalars(page_query(user_id, limit, before, status)).all()
    page = rows[:limit]
    next_cursor = page[-1].id if len(rows) > limit else None
    return Page([row.to_dict() for row in page], next_cursor)


def unread_count_query(user_id: str) -> sa.Select[Any]:
    """How many of the user's notifications are not read: a range of
    ``ix_notifications_recipient_status_id``."""
    return (
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(
            Notification.recipient_id == user_id,
            Notification.status.in_(STATUS_FILTERS["unread"]),
        )
    )


def unread_count(user_id: str) -> int:
    """The number of the user's pending and delivered notifications (the unread badge)."""
    with transaction():
        count = db.session.scalar(unread_count_query(user_id))
    return int(count or 0)
