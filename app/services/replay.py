"""Replay on connect: push to a new socket what its user missed, then ``replay_complete``.

Read this after ``services.sending``: a send leaves a row ``pending`` when its recipient looks
offline (or its push was not heard), and this is where such rows reach the user. The connect
handler (``app.sockets.connection``) calls ``replay`` once the socket is in its room and
registered as online, so every row is either pushed live or read here.

A burst of reconnects is one of the heaviest moments of a deployment, so the reads of
concurrent connects share a transaction on one worker, and so do the records of what became
delivered (``services.batching``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple, TypedDict

import sqlalchemy as sa
from flask import Flask, current_app

from app.errors import ServiceUnavailable
from app.models import NotificationDict, Status, utcnow
from app.observability import metrics
from app.registry import services
from app.services import delivery, storage
from app.services.batching import Batcher, HeldConnection

log = logging.getLogger(__name__)
#: Connects whose reads (or records) one worker runs together.
MAX_BATCH = 256


class ReplayWorkers(NamedTuple):
    """This app's two replay workers: one reads what sockets missed, one records the replayed
    pending ones as delivered."""

    read: Batcher[tuple[str, int | None, int], list[NotificationDict]]
    record: Batcher[tuple[list[int], datetime], None]


def make_replay_workers(app: Flask) -> ReplayWorkers:
    return ReplayWorkers(
        Batcher(app, "read-replays", _read_batch, MAX_BATCH),
        Batcher(app, "record-replays", _record_batch, MAX_BATCH),
    )


class ReplayCompleteDict(TypedDict):
    count: int
    truncated: bool
    lastId: int | None


class Replayed(NamedTuple):
    """What a connect's replay pushed: the ``replay_complete`` event's fields."""

    pushed: int
    #: More was missed than REPLAY_LIMIT: the rest is newer than ``last_id`` (page it with after=).
    truncated: bool
    #: The highest id replayed, else the ``lastId`` the client gave, else None.
    last_id: int | None

    def event(self) -> ReplayCompleteDict:
        return {"count": self.pushed, "truncated": self.truncated, "lastId": self.last_id}


def replay(user_id: str, last_id: int | None, sid: str) -> Replayed:
    """Push to one socket what its user missed, oldest first, then ``replay_complete``.

    With ``last_id``: every notification of the user newer than it, and every pending one
    (older pending ones were never pushed: stored while the user looked offline, e.g. during a
    Redis outage, while the client already got newer ones live). Without: every pending one.
    At most REPLAY_LIMIT: one row more is read to know whether the replay is ``truncated``.
    Pending ones pushed here become ``delivered``: pushed first, recorded after, as in
    ``sending._deliver_batch``.
    """
    workers = services().replay_workers
    limit = current_app.config["REPLAY_LIMIT"]
    missed = workers.read.run((user_id, last_id, limit + 1))
    truncated = len(missed) > limit
    missed = missed[:limit]
    now = utcnow()
    pending = [n for n in missed if n["status"] == Status.PENDING.value]
    delivery.mark_delivered(pending, now)
    delivery.push_to_socket(sid, missed)
    replayed = Replayed(len(missed), truncated, missed[-1]["id"] if missed else last_id)
    delivery.complete_replay(sid, replayed.event())
    metrics.notifications_replayed(len(missed), len(pending))
    if pending:
        try:
            workers.record.run(([n["id"] for n in pending], now))
        except ServiceUnavailable:
            log.warning("could not record %d notifications as delivered", len(pending))
    return replayed


def _read_batch(
    held: HeldConnection, reads: Sequence[tuple[str, int | None, int]]
) -> list[list[NotificationDict]]:
    with held.transaction() as connection:
        return storage.missed_many(connection, reads)


def _record_batch(
    held: HeldConnection, records: Sequence[tuple[list[int], datetime]]
) -> list[None]:
    def record(connection: sa.Connection) -> None:
        for ids, now in records:
            storage.record_delivered(connection, ids, now)

    held.transact(record)
    return [None for _ in records]
