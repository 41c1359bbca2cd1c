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
from app.payloads.models import PageQuery
from app.payloads.rules import DEFAULT_PAGE_SIZE
from app.services import delivery, storage
from app.services.transactions import transaction
from app.services.validation import validate_read


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
    return validate_read(raw)


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
