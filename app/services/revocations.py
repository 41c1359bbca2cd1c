"""Revoked tokens: stored in the database, checked from a per-process cache.

``POST /webhook/revoke {userId, before}`` adds a row: every token of that user issued at or
before ``before`` (``iat``; a token without one counts as issued at 0) is refused from then on
at handshakes, refreshes and the inbox API. Rows are never changed, only added, so a user's
cut-off is the latest ``before`` of their rows.

The handshake must not cost a database round trip, so each process keeps every cut-off in
memory and checks a token with one dictionary look-up. Staleness is bounded:

- the revoking process learns its own revocation at once, and tells every process through the
  Redis control channel (``app.sockets.live``), which learn it as soon as the message arrives;
- whatever a process missed (Redis down, or it was not running or not subscribed) it reads from
  the database: the rows written since its previous read, at most ``REFRESH_SECONDS`` (5 s)
  after it. The live sessions' sweeper re-reads every 5 s while the process holds sockets, and a
  check that finds the cache older than that re-reads first (one round trip per 5 s, not per
  connect). A process's first check reads every row, so one that was down when the revocation
  was made honours it from its start.

So a revocation is honoured everywhere within ~5 s at worst, and at once while Redis works.
Rows are read back from ``created_at`` minus ``OVERLAP`` (60 s): a row committed late, or by a
process whose clock is behind, is still seen on a later read; reading a row twice changes
nothing, since a cut-off only ever moves later.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.errors import DATABASE_UNAVAILABLE, ServiceUnavailable
from app.extensions import db
from app.models import Revocation as RevocationRow
from app.models import utcnow
from app.payloads.models import Revocation
from app.registry import services
from app.services.transactions import transaction
from app.services.validation import require_object

log = logging.getLogger(__name__)
REFRESH_SECONDS = 5.0
OVERLAP = timedelta(seconds=60)
TABLE: sa.Table = RevocationRow.__table__


class RevocationCache:
    """Every user's cut-off (seconds since the epoch), as this process last read them."""

    def __init__(self) -> None:
        self.cutoffs: dict[str, float] = {}
        self._lock = threading.Lock()
        #: ``time.monotonic()`` of the last successful read; None before the first.
        self.read_at: float | None = None
        #: The latest ``created_at`` seen; the next read starts OVERLAP before it.
        self._watermark: datetime | None = None

    def learn(self, user: str, cutoff: float) -> bool:
        """Take in a cut-off; True when it moved the user's later (something to end)."""
        with self._lock:
            if cutoff <= self.cutoffs.get(user, float("-inf")):
                return False
            self.cutoffs[user] = cutoff
            return True

    def revoked(self, user: str, issued_at: float) -> bool:
        cutoff = self.cutoffs.get(user)
        return cutoff is not None and issued_at <= cutoff

    def stale(self) -> bool:
        return self.read_at is None or time.monotonic() - self.read_at > REFRESH_SECONDS

    def refresh(self) -> dict[str, float]:
        """Read the rows written since the last read (all of them the first time); returns the
        cut-offs that moved. Raises the database's error when it cannot be read."""
        started = time.monotonic()
        query = sa.select(TABLE.c.user_id, TABLE.c.issued_before, TABLE.c.created_at)
        if self._watermark is not None:
            query = query.where(TABLE.c.created_at >= self._watermark - OVERLAP)
        with transaction():
            rows = db.session.execute(query).all()
        moved: dict[str, float] = {}
        for user, before, created_at in rows:
            if self.learn(user, epoch(before)):
                moved[user] = self.cutoffs[user]
            if self._watermark is None or created_at > self._watermark:
                self._watermark = created_at
        self.read_at = started
        return moved


def cache() -> RevocationCache:
    return services().revocations


def epoch(value: datetime) -> float:
    """A stored (naive UTC) time as seconds since the epoch."""
    return value.replace(tzinfo=UTC).timestamp()


def is_revoked(user: str, issued_at: float) -> bool:
    """Whether a token of ``user`` issued at ``issued_at`` is revoked, from the cache (read
    first when it is older than REFRESH_SECONDS). ServiceUnavailable when the cache is stale and
    the database cannot be read: a revoked token must not pass because the database is down."""
    revocations = cache()
    if revocations.stale():
        try:
            revocations.refresh()
        except DATABASE_UNAVAILABLE as error:
            log.warning("revocations could not be read (%s)", type(error).__name__)
            raise ServiceUnavailable() from None
    return revocations.revoked(user, issued_at)


def refresh_moved() -> dict[str, float]:
    """Re-read the database (the sweeper's call); the cut-offs that moved."""
    return cache().refresh()


def parse_revoke(raw: object) -> tuple[str, datetime]:
    """``{userId, before?}`` checked by ``Revocation``, every problem at once: the user and the
    naive UTC cut-off (``before`` an ISO 8601 time with its zone, default now)."""
    revocation = Revocation.check(require_object(raw))
    return revocation.user_id, revocation.before or utcnow()


def store(user: str, before: datetime) -> float:
    """Commit the revocation and take it into this process's cache; returns the cut-off."""
    with transaction():
        db.session.execute(
            sa.insert(TABLE).values(user_id=user, issued_before=before, created_at=utcnow())
        )
    cutoff = epoch(before)
    cache().learn(user, cutoff)
    return cutoff
