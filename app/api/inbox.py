"""``/api/notifications``: a user's inbox over HTTP, authenticated by a bearer JWT
(``security.authentication.user_required``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from app.request_body import read_json_body
from app.security.authentication import user_required
from app.services import inbox

bp = Blueprint("inbox", __name__)


@bp.get("/api/notifications")
@user_required
def list_notifications(user: str) -> tuple[dict[str, Any], int]:
    """Called by inbox clients; 200 with a page of the caller's notifications, newest first
    (oldest first with ``after``), the cursor of the next page and the unread count."""
    query = inbox.parse_page_request(request.args.to_dict(flat=False))
    page = inbox.list_for(user, query.limit, query.before, query.status, query.after)
    return {
        "success": True,
        "notifications": page.notifications,
        "nextCursor": page.next_cursor,
        "unreadCount": inbox.unread_count(user),
    }, 200


@bp.post("/api/notifications/read")
@user_required
def read_notifications(user: str) -> tuple[dict[str, Any], int]:
    """Called by inbox clients; 200 with how many of the caller's notifications became read.
    The caller's sockets get ``notification_read``."""
    updated = inbox.mark_read(user, read_json_body())
    return {"success": True, "updated": updated}, 200
