"""The inbox: a user's own notifications over HTTP, a page at a time; unread counts; mark read.

Read this for what ``GET /api/notifications`` and ``POST /api/notifications/read`` (and the
``mark_read`` socket event) do. The queries are in ``services.storage``; this module checks the
request, runs them in one transaction each, and tells the user's other sockets what was read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from app.errors import ValidationError
from app.extensions import db
from app.models import NotificationDict, utcnow
from app.services import delivery, storage
from app.services.storage import STATUS_FILTERS
from app.services.transactions import transaction
from app.services.validation import require_object

MAX_READ_IDS = 1000
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_ID = 2**63 - 1  # BIGINT: a larger cursor is refused rather than sent to the database
PAGE_PARAMETERS = frozenset({"limit", "before", "after", "status"})


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


def list_for(
    user_id: str, limit: int, before: int | None, status: str | None, after: int | None = None
) -> Page:
    """The user's notifications older than ``before`` (all without it), newest first, at most
    ``limit``, filtered by ``status`` (a STATUS_FILTERS name) when given. With ``after``:
    those newer than it (and older than ``before``, if given), oldest first: the catch-up after
    a truncated replay."""
    with transaction():
        query = storage.page_query(user_id, limit, before, status, after)
        rows = db.session.scalars(query).all()
    page = rows[:limit]
    next_cursor = page[-1].id if len(rows) > limit else None
    return Page([row.to_dict() for row in page], next_cursor)


def unread_count(user_id: str) -> int:
    """The number of the user's pending and delivered notifications (the unread badge)."""
    with transaction():
        count = db.session.scalar(storage.unread_count_query(user_id))
    return int(count or 0)


def mark_read(user_id: str, raw: object, skip_sid: str | None = None) -> int:
    """Mark the caller's own notifications read and tell their other sockets; returns the count.

    The recipient condition is in the UPDATE itself, so ids of other users' notifications are
    silently not counted: the answer never tells whether such an id exists.
    """
    ids = parse_read_request(raw)
    with transaction():
        updated = storage.mark_read(db.session.connection(), user_id, ids, utcnow())
    payload: dict[str, Any] = {"all": True} if ids is None else {"ids": ids}
    delivery.announce_read(user_id, payload, skip_sid=skip_sid)
    return updated


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
    return None if everything or ids is None else sorted({int(i) for i in ids})


def _id_number(value: object) -> int | None:
    """A notification id (1 to BIGINT's maximum); ``5.0`` counts, as JSON Schema counts it."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID:
        return value
    return None


def _decimal(value: str, low: int, high: int) -> int | None:
    """``value`` as an integer in ``low..high`` when it is written in ASCII digits only."""
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(high)):
        return None
    number = int(value)
    return number if low <= number <= high else None


def parse_page_request(query: Mapping[str, Sequence[str]]) -> PageRequest:
    """The inbox query (each parameter's values, as given) checked, every problem at once.

    ``limit`` 1-100 (default 20), ``before`` a positive id, ``after`` an id (0 or more),
    ``status`` one of STATUS_FILTERS; each at most once. Unknown parameters are refused by name,
    like unknown body fields.
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
    # after=0 is "from the start": every id is greater.
    after = _decimal(values["after"], 0, MAX_ID) if "after" in values else None
    if after is None and "after" in values:
        details["after"] = "must be an integer id, 0 or more"
    status = values.get("status")
    if status is not None and status not in STATUS_FILTERS:
        details["status"] = "must be one of " + ", ".join(STATUS_FILTERS)
    if details:
        raise ValidationError(details, "The query is not valid.")
    return PageRequest(limit or DEFAULT_PAGE_SIZE, before, status, after)
