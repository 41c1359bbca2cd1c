"""``/api/notifications``: a user's inbox over HTTP, authenticated by a bearer JWT."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request

from app.api.body import read_json_body
from app.errors import ServiceUnavailable, Unauthorized
from app.observability import metrics
from app.security.tokens import TokenProblem, TokenRefused, authenticate
from app.services import inbox

bp = Blueprint("inbox", __name__)


def request_user() -> str | None:
    """The user of the request's ``Authorization: Bearer`` token, or None.

    Memoised per request: the rate limiter asks before the view runs. Only the header is read,
    never the query string, so tokens do not end up in access logs. Revocations that cannot be
    read (database down) leave no user, and the view answers 503.
    """
    if "inbox_user" not in g:
        g.inbox_user, g.inbox_token_problem, g.inbox_unavailable = None, None, None
        try:
            g.inbox_user = authenticate(request.headers.get("Authorization"))
        except TokenRefused as refused:
            g.inbox_token_problem = refused.problem
        except ServiceUnavailable as error:
            g.inbox_unavailable = error
    user: str | None = g.inbox_user
    return user


def has_valid_token() -> bool:
    return request_user() is not None


def user_bucket() -> str:
    return "inbox-user:" + (request_user() or "")


def require_user() -> str:
    user = request_user()
    if g.inbox_unavailable is not None:
        raise g.inbox_unavailable
    if user is None:
        metrics.auth_refused(g.inbox_token_problem.value)
        raise Unauthorized(
            message="A valid bearer token is required (Authorization header).",
            details={"token": g.inbox_token_problem.value},
        )
    return user


@bp.after_request
def bearer_challenge(response: Response) -> Response:
    """A 401 names the scheme to use (RFC 6750), and says when the token sent was refused."""
    if response.status_code == 401:
        sent = g.get("inbox_token_problem") not in (None, TokenProblem.MISSING)
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"' if sent else "Bearer"
    return response


@bp.get("/api/notifications")
def list_notifications() -> tuple[dict[str, Any], int]:
    """Called by inbox clients; 200 with a page of the caller's notifications, newest first
    (oldest first with ``after``), the cursor of the next page and the unread count."""
    user = require_user()
    query = inbox.parse_page_request(request.args.to_dict(flat=False))
    page = inbox.list_for(user, query.limit, query.before, query.status, query.after)
    return {
        "success": True,
        "notifications": page.notifications,
        "nextCursor": page.next_cursor,
        "unreadCount": inbox.unread_count(user),
    }, 200


@bp.post("/api/notifications/read")
def read_notifications() -> tuple[dict[str, Any], int]:
    """Called by inbox clients; 200 with how many of the caller's notifications became read.
    The caller's sockets get ``notification_read``."""
    user = require_user()
    updated = inbox.mark_read(user, read_json_body())
    return {"success": True, "updated": updated}, 200
