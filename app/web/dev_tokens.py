"""``POST /demo/token``: a token for any user id, for the demo page in development and testing.

Registered by ``app.web.register`` only in those profiles: in production tokens come from the
service's own users (``flask issue-token`` or the product's login), never from this route.

Its tokens are short (120 s, or ``expiresIn``) so that the page's refresh before
expiry (``token_expiring`` → ``refresh_token``) is seen at work within minutes.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from app.payloads.models import DevTokenRequest
from app.request_body import read_json_body
from app.security.tokens import issue
from app.services.validation import require_object

bp = Blueprint("dev_tokens", __name__, url_prefix="/demo")


@bp.post("/token")
def dev_token() -> tuple[dict[str, Any], int]:
    """Called by the demo page's "Get a development token" button (and its refresh) with
    ``{"userId": ..., "expiresIn"?: seconds}``; 201 with a token for that user expiring in
    ``expiresIn`` (default ``DevTokenRequest``'s), 400 ``validation_error`` for a bad field."""
    asked = DevTokenRequest.check(require_object(read_json_body()))
    user, lifetime = asked.user_id, asked.expires_in
    return {"success": True, "userId": user, "token": issue(user, lifetime)}, 201
