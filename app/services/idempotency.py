"""Webhook idempotency keys: a repeat within 24 hours gets the first answer and creates nothing.

A key belongs to the API key that used it (by ``key_id``: the key itself is never stored), so two
callers cannot collide. The key's row goes into the database in the same transaction as the
notifications it answers for; its unique constraint decides a race between processes:

- on MariaDB (InnoDB), the loser's INSERT of the same key waits on the winner's uncommitted index
  record, then fails with a duplicate-key error once the winner commits; the loser rolls back its
  own notifications and reads the winner's answer. Should the winner roll back instead, waiting
  losers may deadlock with each other; InnoDB then rolls a victim back, which simply asks again;
- on SQLite, writers take turns on the database lock, and the second one finds the key taken.

The stored answer is written at commit (notifications ``pending``) and again once delivery has
run (some may be ``delivered``): ``completed_at`` says it is final. A repeat that finds the key
not yet completed waits for it, briefly; the answer at commit is still true if it never comes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
import sqlalchemy.exc as sa_exc

from app.errors import ApiError, ErrorCode, ServiceUnavailable
from app.extensions import db, socketio
from app.json_texts import json_value_texts, shaped_dumps
from app.models import IdempotencyKey, utcnow
from app.services.transactions import transaction

log = logging.getLogger(__name__)
#: How long a key is remembered; an older row is ignored and replaced (and purged by retention).
TTL = timedelta(hours=24)
#: How long a repeat waits for the first request's final answer, and how often it looks.
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.05
#: How many times a request asks again after losing a race (or a deadlock) before a 503.
ATTEMPTS = 5
MYSQL_DEADLOCK = 1213


class Answer(NamedTuple):
    """An HTTP status and JSON body, as given to the first request and to every repeat."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Claim:
    """An ``Idempotency-Key`` of one API key (``owner``: its ``key_id``) for one request body."""

    owner: str
    key: str
    request_hash: str


class Taken(Exception):
    """Another request holds the key (it committed first, or we were a deadlock victim)."""


def fingerprint(payload: dict[str, Any]) -> str:
    """SHA-256 of the body as canonical JSON (sorted keys, no spaces, ASCII escapes), so key
    order and formatting do not make two equal bodies differ. The caller leaves ``apiKey`` out."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def earlier_answer(claim: Claim) -> Answer | None:
    """The answer given to the first request with this key, or None when there is none (or it
    is older than TTL: that row is removed). Raises Conflict when that request had another body.

    While the first request has not completed, waits up to WAIT_SECONDS for its final answer.
    """
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        # Each look is its own transaction: a new snapshot sees what committed meanwhile.
        with transaction():
            row = db.session.execute(
                sa.select(
                    IdempotencyKey.id,
                    IdempotencyKey.request_hash,
                    IdempotencyKey.response_status,
                    IdempotencyKey.response_body,
                    IdempotencyKey.created_at,
                    IdempotencyKey.completed_at,
                ).where(
                    IdempotencyKey.api_key_id == claim.owner,
                    IdempotencyKey.idempotency_key == claim.key,
                )
            ).one_or_none()
        if row is None:
            return None
        if expired(row.created_at):
            forget(row.id)
            return None
        if row.request_hash != claim.request_hash:
            raise ApiError(
                ErrorCode.CONFLICT,
                "This Idempotency-Key was already used with a different request body.",
                {"Idempotency-Key": "was used with a different request body"},
            )
        if row.completed_at is not None or time.monotonic() >= deadline:
            return Answer(row.response_status, decode(row.response_body))
        socketio.sleep(POLL_SECONDS)


def reserve(claim: Claim, answer: Answer) -> None:
    """Add the key's row, with ``answer``, to the caller's transaction; raises Taken when another
    request holds the key. The caller's transaction must then roll back (its rows with it)."""
    try:
        db.session.execute(
            sa.insert(IdempotencyKey).values(
                api_key_id=claim.owner,
                idempotency_key=claim.key,
                request_hash=claim.request_hash,
                response_status=answer.status,
                response_body=encode(answer.body),
                created_at=utcnow(),
            )
        )
    except sa_exc.IntegrityError as error:
        raise Taken() from error
    except sa_exc.OperationalError as error:
        if getattr(error.orig, "args", (None,))[0] == MYSQL_DEADLOCK:
            raise Taken() from error
        raise


def complete(claim: Claim, answer: Answer) -> None:
    """Record ``answer`` as the key's final one. A failure is logged, not raised: the answer
    stored at commit stays, and is still true (it only shows no notification delivered)."""
    try:
        with transaction():
            db.session.execute(
                sa.update(IdempotencyKey)
                .where(
                    IdempotencyKey.api_key_id == claim.owner,
                    IdempotencyKey.idempotency_key == claim.key,
                )
                .values(
                    response_status=answer.status,
                    response_body=encode(answer.body),
                    completed_at=utcnow(),
                )
            )
    except ServiceUnavailable:
        log.warning("could not record the final answer of an idempotent request")


def expired(created_at: datetime, now: datetime | None = None) -> bool:
    return created_at < (now or utcnow()) - TTL


def forget(row_id: int) -> None:
    """Remove one expired row. A row that replaced it meanwhile is not expired, so it stays
    even where its id was reused (SQLite gives a deleted largest id out again)."""
    with transaction():
        db.session.execute(
            sa.delete(IdempotencyKey).where(
                IdempotencyKey.id == row_id, IdempotencyKey.created_at < utcnow() - TTL
            )
        )


#: ``json.dumps(body, ensure_ascii=False, separators=(",", ":"))``'s encoder, kept.
ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
UNESCAPED_VALUE_TEXTS = json_value_texts(ensure_ascii=False)


def encode(body: dict[str, Any]) -> bytes:
    """Compressed UTF-8 JSON, a batch's notifications encoded once per shape (``shaped_dumps``:
    the text ``json.dumps`` writes); ``surrogatepass`` keeps any string JSON could carry."""
    text = shaped_dumps(ENCODER.encode, json.dumps, UNESCAPED_VALUE_TEXTS, body)
    return zlib.compress(text.encode("utf-8", "surrogatepass"))


def decode(blob: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(zlib.decompress(blob).decode("utf-8", "surrogatepass"))
    return body
