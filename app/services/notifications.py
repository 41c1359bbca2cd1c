"""Submitting, replaying and reading notifications: the only code that writes them.

The ``send_notification`` socket handler calls ``submit`` (one recipient); the webhook calls
``submit_many`` (``recipientId`` or ``recipientIds``, with an optional idempotency key).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypedDict

import sqlalchemy as sa
from flask import Flask, current_app

from app.errors import ServiceUnavailable, ValidationError
from app.extensions import db
from app.models import Notification, NotificationDict, Status, iso, utcnow
from app.observability import metrics
from app.payloads.models import PageQuery
from app.payloads.rules import DEFAULT_PAGE_SIZE
from app.services import delivery, idempotency, storage
from app.services.batching import Batcher, HeldConnection
from app.services.idempotency import Answer
from app.services.presence import presence
from app.services.transactions import transaction
from app.services.validation import (
    NewSend,
    idempotency_key,
    require_object,
    validate_notification,
    validate_read,
    validate_send,
)

log = logging.getLogger(__name__)
#: Sends (each of 1 to 1000 rows) one worker stores or delivers together.
MAX_BATCH = 256
EXTENSION_KEY = "notify.send_batchers"


class Stored(NamedTuple):
    """Notifications just committed, waiting for their live push."""

    notifications: list[NotificationDict]
    entry: str
    committed_at: float


class SendBatchers(NamedTuple):
    """This app's workers: one stores sends, one delivers what was stored; on connect, one reads
    what sockets missed and one records the replayed pending ones as delivered."""

    store: Batcher[tuple[NewSend, str | None], list[NotificationDict]]
    deliver: Batcher[Stored, None]
    replay: Batcher[tuple[str, int | None, int], list[NotificationDict]]
    record: Batcher[tuple[list[int], datetime], None]


def init_send_batchers(app: Flask) -> None:
    app.extensions[EXTENSION_KEY] = SendBatchers(
        Batcher(app, "store-sends", _store_batch, MAX_BATCH),
        Batcher(app, "deliver-sends", _deliver_batch, MAX_BATCH),
        Batcher(app, "read-replays", _replay_batch, MAX_BATCH),
        Batcher(app, "record-replays", _record_batch, MAX_BATCH),
    )


def _batchers() -> SendBatchers:
    batchers: SendBatchers = current_app.extensions[EXTENSION_KEY]
    return batchers


def submit(raw: object, *, sender_id: str | None) -> NotificationDict:
    """Validate, store, then deliver one notification; returns it as stored.

    Loss is impossible by the order of the steps: the row is committed as ``pending`` before
    anyone is asked whether the recipient is online. A recipient who registers as online after
    our presence check replays pending rows after registering, so sees this committed row; one
    registered before it is in the room and gets the live push. Only after the push is the row
    marked ``delivered``; if that second commit fails the row stays ``pending`` and is replayed
    later (a duplicate, which the contract allows and clients drop by id).

    Concurrent sends share these steps (``services.batching``): one INSERT and COMMIT for all
    sends queued meanwhile, then one presence round trip, one PUBLISH and one UPDATE for them;
    each caller returns once its own rows are committed and pushed.
    """
    new = validate_notification(raw, current_app.config["MAX_MESSAGE_LENGTH"])
    send = NewSend((new.recipient_id,), new.message, new.type, new.data, batch=False)
    return store_and_deliver(send, sender_id)[0]


def store_and_deliver(send: NewSend, sender_id: str | None) -> list[NotificationDict]:
    """Commit ``send``'s rows (with other sends of the moment), then deliver them."""
    entry = metrics.entry_point()
    batchers = _batchers()
    stored = batchers.store.run((send, sender_id))
    metrics.notifications_stored(len(stored), entry)
    batchers.deliver.run(Stored(stored, entry, time.perf_counter()))
    return stored


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

    Every row of a send is committed in one transaction: all are stored, or none. The order of
    storing and delivering is ``submit``'s.

    With ``idempotency_key_header`` (the ``Idempotency-Key`` value; ``owner`` is the API key's
    id) a repeat of the same body within 24 hours gets the first answer and stores nothing, and
    another body gets 409 ``conflict``; see ``services.idempotency`` for how a race is decided.
    """
    key = idempotency_key(idempotency_key_header)
    send = validate_send(raw, current_app.config["MAX_MESSAGE_LENGTH"])
    if key is None:
        return answer_for(send, store_and_deliver(send, sender_id))
    claim = idempotency.Claim(owner, key, idempotency.fingerprint(require_object(raw)))
    for _attempt in range(idempotency.ATTEMPTS):
        earlier = idempotency.earlier_answer(claim)
        if earlier is not None:
            return earlier
        try:
            with transaction():
                stored = storage.insert(db.session.connection(), _values(send, sender_id))
                idempotency.reserve(claim, answer_for(send, stored))
        except idempotency.Taken:
            continue  # another request with this key committed first: its answer is ours
        entry = metrics.entry_point()
        metrics.notifications_stored(len(stored), entry)
        _batchers().deliver.run(Stored(stored, entry, time.perf_counter()))
        answer = answer_for(send, stored)
        idempotency.complete(claim, answer)
        return answer
    raise ServiceUnavailable(message="The request could not be completed; try it again.")


def _values(send: NewSend, sender_id: str | None) -> list[dict[str, Any]]:
    return storage.row_values(send, sender_id, utcnow())


def _store_batch(
    held: HeldConnection, sends: Sequence[tuple[NewSend, str | None]]
) -> list[list[NotificationDict] | BaseException]:
    """One transaction for every send of the batch, each send's rows in order.

    If it fails for a reason other than the database being unavailable, each send is tried
    alone, so that one send's problem is not another's.
    """
    values = [_values(send, sender) for send, sender in sends]
    try:
        with held.transaction() as connection:
            stored = storage.insert(connection, [row for rows in values for row in rows])
    except ServiceUnavailable:
        raise
    except Exception as error:
        if len(sends) == 1:
            return [error]
        return [_store_batch(held, [send])[0] for send in sends]
    answers: list[list[NotificationDict] | BaseException] = []
    for rows in values:
        answers.append(stored[: len(rows)])
        stored = stored[len(rows) :]
    return answers


def _deliver_batch(held: HeldConnection, batch: Sequence[Stored]) -> list[None]:
    """Push the stored notifications whose recipients are online (one presence round trip and
    one PUBLISH per process that holds a recipient), then record delivered in one UPDATE the
    ones every such process heard.

    Why none is lost, with routing (stored -> presence -> push -> record):

    - Stored first: every row is committed ``pending`` before presence is read. A socket that
      registers in presence after our read replays pending rows after registering (and joins
      its room before registering), so it reads our committed row: pushed or replayed, never
      neither.
    - The presence read names each process holding a socket of the recipient; a push goes to
      those only. A socket registered before our read is on one of them and already in its
      room, so that process's emit reaches it.
    - A push counts only if heard: each PUBLISH answers how many listeners got it, and a
      process whose channel had none (crashed with its entries not yet expired, or between two
      subscriptions after a Redis failure) leaves its notifications ``pending``, to be replayed
      on the next connect, instead of recording them delivered. A failed PUBLISH likewise.
    - Recorded after pushing: a crash in between leaves rows pending, pushed again later: a
      duplicate (allowed, clients drop by id), never a loss. A failed UPDATE does the same.
    - A socket that moves between processes while a push is in flight (the client drops the
      socket on A and connects again on B): if B registered before our read, B is a target;
      if after, B's replay reads the row, unless the push to A was recorded delivered first.
      In that last case the row reached A's socket if it was still open, and otherwise the
      client, which never saw its id, gets it by reconnecting with ``lastId`` (the contract's
      at-least-once rule: everything newer than lastId is replayed whatever its status).
      Broadcasting had the same window (B's join after the broadcast reached B);
      tests/e2e/test_routing.py's moving-socket races run it (on a Redis Cluster too).
    """
    everything = [n for stored in batch for n in stored.notifications]
    where = presence().locate(n["recipientId"] for n in everything)
    now = utcnow()
    delivered_at = iso(now)
    pushed: list[NotificationDict] = []
    for notification in everything:
        if notification["recipientId"] in where:
            notification["status"] = Status.DELIVERED.value
            notification["deliveredAt"] = delivered_at
            pushed.append(notification)
    if not pushed:
        return [None for _ in batch]
    heard = delivery.push(pushed, where)
    for notification, ok in zip(pushed, heard, strict=True):
        if not ok:  # the answer tells the truth: still pending
            notification["status"] = Status.PENDING.value
            notification["deliveredAt"] = None
    delivered = {n["id"] for n, ok in zip(pushed, heard, strict=True) if ok}
    for stored in batch:
        count = sum(n["id"] in delivered for n in stored.notifications)
        metrics.notifications_pushed(count, stored.entry, stored.committed_at)
    if delivered:
        try:
            ids = sorted(delivered)
            held.transact(lambda connection: storage.record_delivered(connection, ids, now))
        except ServiceUnavailable:
            log.warning("could not record %d notifications as delivered", len(delivered))
    return [None for _ in batch]


def answer_for(send: NewSend, stored: Sequence[NotificationDict]) -> Answer:
    """The webhook's 201 body for the ``stored`` notifications, as they are now."""
    if send.batch:
        return Answer(201, {"success": True, "notifications": [dict(n) for n in stored]})
    return Answer(201, {"success": True, "notification": dict(stored[0])})


class Replayed(NamedTuple):
    """What a connect's replay pushed: the ``replay_complete`` event's fields."""

    pushed: int
    #: More was missed than REPLAY_LIMIT: the rest is newer than ``last_id`` (page it with after=).
    truncated: bool
    #: The highest id replayed, else the ``lastId`` the client gave, else None.
    last_id: int | None

    def event(self) -> ReplayCompleteDict:
        return {"count": self.pushed, "truncated": self.truncated, "lastId": self.last_id}


class ReplayCompleteDict(TypedDict):
    count: int
    truncated: bool
    lastId: int | None


def replay(user_id: str, last_id: int | None, sid: str) -> Replayed:
    """Push to one socket what its user missed, oldest first, then ``replay_complete``.

    With ``last_id``: every notification of the user newer than it, and every pending one
    (older pending ones were never pushed: stored while the user looked offline, e.g. during a
    Redis outage, while the client already got newer ones live). Without: every pending one.
    At most REPLAY_LIMIT: one row more is read to know whether the replay is ``truncated``.
    Pending ones pushed here become ``delivered``: pushed first, recorded after, as in
    ``_deliver_batch``. The reads of concurrent connects share a transaction, and so do the
    records (a burst of reconnects is one of the heaviest moments of a deployment).
    """
    batchers = _batchers()
    limit = current_app.config["REPLAY_LIMIT"]
    missed = batchers.replay.run((user_id, last_id, limit + 1))
    truncated = len(missed) > limit
    missed = missed[:limit]
    now = utcnow()
    delivered_at = iso(now)
    pending = [n for n in missed if n["status"] == Status.PENDING.value]
    for notification in pending:
        notification["status"] = Status.DELIVERED.value
        notification["deliveredAt"] = delivered_at
    delivery.push_to_socket(sid, missed)
    replayed = Replayed(len(missed), truncated, missed[-1]["id"] if missed else last_id)
    delivery.complete_replay(sid, replayed.event())
    metrics.notifications_replayed(len(missed), len(pending))
    if pending:
        try:
            batchers.record.run(([n["id"] for n in pending], now))
        except ServiceUnavailable:
            log.warning("could not record %d notifications as delivered", len(pending))
    return replayed


def _replay_batch(
    held: HeldConnection, reads: Sequence[tuple[str, int | None, int]]
) -> list[list[NotificationDict]]:
    with held.transaction() as connection:
        return [storage.missed(connection, *read) for read in reads]


def _record_batch(
    held: HeldConnection, records: Sequence[tuple[list[int], datetime]]
) -> list[None]:
    def record(connection: sa.Connection) -> None:
        for ids, now in records:
            storage.record_delivered(connection, ids, now)

    held.transact(record)
    return [None for _ in records]


def parse_read_request(raw: object) -> list[int] | None:
    """``{"ids": [...]}`` gives the ids; ``{"all": true}`` gives None (every notification)."""
    return validate_read(raw)


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

#: The inbox's ``status`` filters (``PageQuery.status``); ``unread``: everything not yet read.
STATUS_FILTERS: dict[str, tuple[Status, ...]] = {
    "pending": (Status.PENDING,),
    "delivered": (Status.DELIVERED,),
    "read": (Status.READ,),
    "unread": (Status.PENDING, Status.DELIVERED),
}
CATCH_UP_INDEX_HINT = (
    "USE INDEX (ix_notifications_recipient_id, ix_notifications_recipient_status_id)"
)


class PageRequest(NamedTuple):
    limit: int = DEFAULT_PAGE_SIZE
    before: int | None = None
    status: str | None = None
    #: Catch-up: ids greater than this one, oldest first (instead of ``before``).
    after: int | None = None


class Page(NamedTuple):
    notifications: list[NotificationDict]
    #: The id to pass as ``before`` (or ``after``) for the next page; None on the last page.
    next_cursor: int | None


def parse_page_request(query: Mapping[str, Sequence[str]]) -> PageRequest:
    """The inbox query (each parameter's values, as given) checked by ``PageQuery``, every
    problem at once; a parameter given twice is refused too."""
    fields = PageQuery.model_fields
    values = {name: given[0] for name, given in query.items() if given}
    repeated = {name: "must be given once" for name in fields if len(query.get(name, ())) > 1}
    values = {name: value for name, value in values.items() if name not in repeated}
    try:
        checked = PageQuery.check(values)
    except ValidationError as error:
        raise ValidationError((error.details or {}) | repeated, error.message) from None
    if repeated:
        raise ValidationError(repeated, PageQuery.refusal)
    return PageRequest(checked.limit, checked.before, checked.status, checked.after)


def page_query(
    user_id: str, limit: int, before: int | None, status: str | None, after: int | None = None
) -> sa.Select[Any]:
    """One page of the user's notifications, newest first (oldest first with ``after``), with
    one row more than ``limit`` (its presence says there is a next page).

    Served by ``ix_notifications_recipient_id`` (recipient_id, id) without a filter and by
    ``ix_notifications_recipient_status_id`` (recipient_id, status, id) with one; the recipient
    condition is always there, so a cursor never reaches another user's rows.
    """
    query = sa.select(Notification).where(Notification.recipient_id == user_id)
    if status is not None:
        query = query.where(Notification.status.in_(STATUS_FILTERS[status]))
    if before is not None:
        query = query.where(Notification.id < before)
    if after is not None:
        # MariaDB would walk the primary key in id order from ``after`` (ORDER BY ... LIMIT),
        # through every other user's rows; the recipient's own range is what is wanted.
        for dialect in ("mysql", "mariadb"):
            query = query.with_hint(Notification, CATCH_UP_INDEX_HINT, dialect_name=dialect)
        return query.where(Notification.id > after).order_by(Notification.id).limit(limit + 1)
    return query.order_by(Notification.id.desc()).limit(limit + 1)


def list_for(
    user_id: str, limit: int, before: int | None, status: str | None, after: int | None = None
) -> Page:
    """The user's notifications older than ``before`` (all without it), newest first, at most
    ``limit``, filtered by ``status`` (a STATUS_FILTERS name) when given. With ``after``:
    those newer than it (and older than ``before``, if given), oldest first: the catch-up after
    a truncated replay."""
    with transaction():
        rows = db.session.scalars(page_query(user_id, limit, before, status, after)).all()
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
