"""Sending: validate, store, then deliver a notification; the only code that creates them.

Read this first to follow a send. The ``send_notification`` socket handler calls ``submit``
(one recipient); the webhook calls ``submit_many`` (``recipientId`` or ``recipientIds``, with an
optional ``Idempotency-Key``). Every send goes through the same three steps:

1. validate (``services.validation``);
2. store the rows as ``pending`` and commit (``storage.insert``);
3. deliver: push to the recipients online, then record the pushed ones ``delivered``.

Concurrent sends share steps 2 and 3 (``services.batching``): two workers per process, one
storing every send queued meanwhile in one INSERT and COMMIT, one delivering them with one
presence round trip, one PUBLISH and one UPDATE. An idempotent send (``_send_once``) stores its
rows together with its key in a transaction of its own, then is delivered by the same worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import NamedTuple

from flask import Flask, current_app

from app.errors import ServiceUnavailable
from app.extensions import db
from app.models import NotificationDict, Status, utcnow
from app.observability import metrics
from app.registry import services
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
    validate_send,
)

log = logging.getLogger(__name__)
#: Sends (each of 1 to 1000 rows) one worker stores or delivers together.
MAX_BATCH = 256


class Stored(NamedTuple):
    """Notifications just committed, waiting for their live push."""

    notifications: list[NotificationDict]
    entry: str
    committed_at: float


class SendWorkers(NamedTuple):
    """This app's two send workers: one stores sends, one delivers what was stored."""

    store: Batcher[tuple[NewSend, str | None], list[NotificationDict]]
    deliver: Batcher[Stored, None]


def make_send_workers(app: Flask) -> SendWorkers:
    """The deliver worker's UPDATE reads a range of ids: under REPEATABLE READ, InnoDB's
    default, it would lock the gap after the newest row until it commits, and so hold up the
    store worker's next INSERT; READ COMMITTED locks the rows it changes only."""
    return SendWorkers(
        Batcher(app, "store-sends", _store_batch, MAX_BATCH),
        Batcher(app, "deliver-sends", _deliver_batch, MAX_BATCH, "READ COMMITTED"),
    )


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
    another body gets 409 ``conflict`` (``_send_once``).
    """
    key = idempotency_key(idempotency_key_header)
    send = validate_send(raw, current_app.config["MAX_MESSAGE_LENGTH"])
    if key is None:
        return answer_for(send, store_and_deliver(send, sender_id))
    claim = idempotency.Claim(owner, key, idempotency.fingerprint(require_object(raw)))
    return _send_once(send, sender_id, claim)


def store_and_deliver(send: NewSend, sender_id: str | None) -> list[NotificationDict]:
    """Commit ``send``'s rows (with other sends of the moment), then deliver them."""
    stored = services().send_workers.store.run((send, sender_id))
    _deliver(stored)
    return stored


def _send_once(send: NewSend, sender_id: str | None, claim: idempotency.Claim) -> Answer:
    """The idempotent send, in one pass: the earlier answer if the key was used; else the rows
    and the key's row in one commit (the answer stored with the key shows them ``pending``),
    delivery, and the key's answer made final (the same answer, now showing what was pushed).

    The key's unique constraint decides a race (``services.idempotency``): the loser rolls its
    rows back and, on its next attempt, finds the winner's answer.
    """
    for _attempt in range(idempotency.ATTEMPTS):
        earlier = idempotency.earlier_answer(claim)
        if earlier is not None:
            return earlier
        try:
            with transaction():
                values = storage.row_values(send, sender_id, utcnow())
                stored = storage.insert(db.session.connection(), values)
                answer = answer_for(send, stored)
                idempotency.reserve(claim, answer)
        except idempotency.Taken:
            continue  # another request with this key committed first: its answer is ours
        _deliver(stored)
        idempotency.complete(claim, answer)
        return answer
    raise ServiceUnavailable(message="The request could not be completed; try it again.")


def _deliver(stored: list[NotificationDict]) -> None:
    """Count the committed rows, then push them and record them delivered (the deliver worker);
    the dicts show the status each ends in."""
    entry = metrics.entry_point()
    metrics.notifications_stored(len(stored), entry)
    services().send_workers.deliver.run(Stored(stored, entry, time.perf_counter()))


def answer_for(send: NewSend, stored: Sequence[NotificationDict]) -> Answer:
    """The webhook's 201 body for the ``stored`` notifications. The body holds the dicts
    themselves, so it shows their status at the time it is encoded."""
    if send.batch:
        return Answer(201, {"success": True, "notifications": list(stored)})
    return Answer(201, {"success": True, "notification": stored[0]})


def _store_batch(
    held: HeldConnection, sends: Sequence[tuple[NewSend, str | None]]
) -> list[list[NotificationDict] | BaseException]:
    """One transaction for every send of the batch, each send's rows in order.

    If it fails for a reason other than the database being unavailable, each send is tried
    alone, so that one send's problem is not another's.
    """
    now = utcnow()
    values = [storage.row_values(send, sender, now) for send, sender in sends]
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
    pushed = [n for n in everything if n["recipientId"] in where]
    if not pushed:
        return [None for _ in batch]
    now = utcnow()
    delivery.mark_delivered(pushed, now)
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
        ids = sorted(delivered)
        try:
            held.transact(lambda connection: storage.record_delivered(connection, ids, now))
        except ServiceUnavailable:
            log.warning("could not record %d notifications as delivered", len(ids))
    return [None for _ in batch]
