"""The unit of work of every service: commit all of it, or roll all of it back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from app.errors import DATABASE_UNAVAILABLE, ServiceUnavailable
from app.extensions import db

log = logging.getLogger(__name__)


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
