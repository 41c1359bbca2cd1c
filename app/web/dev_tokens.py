"""``POST /demo/token``: a token for any user id, for the demo page in development and testing.

Registered by ``app.web.register`` only in those profiles: in production tokens come from the
service's own users (``flask issue-token`` or the product's login), never from this route.

Its tokens are short (DEV_TOKEN_SECONDS, or ``expiresIn``) so that the page's refresh before
expiry (``token_expiring`` → ``refresh_token``) is seen at work within minutes.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from app.errors import ValidationError
from app.request_body import read_json_body
from app.security.tokens import issue
from app.services.validation import user_id

bp = Blueprint("dev_tokens", __name__, url_prefix="/demo")
DEV_TOKEN_SECONDS = 120
MAX_DEV_TOKEN_SECONDS = 86400


@bp.post("/token")
def dev_token() -> tuple[dict[str, Any], int]:
    """Called by the demo page's "Get a development token" button (and its refresh) with
    ``{"userId": ..., "expiresIn"?: seconds}``; 201 with a token for that user expiring in
    ``expiresIn`` (default DEV_TOKEN_SECONDS), 400 ``validation_error`` for a bad field."""
    body = read_json_body()
    unknown = sorted(set(body) - {"userId", "expiresIn"}) if isinstance(body, dict) else []
    user = user_id(body.get("userId")) if isinstance(body, dict) else None
    lifetime = body.get("expiresIn", DEV_TOKEN_SECONDS) if isinstance(body, dict) else None
    valid_lifetime = (
        isinstance(lifetime, int)
        and not isinstance(lifetime, bool)
        and 1 <= lifetime <= MAX_DEV_TOKEN_SECONDS
    )
    if user is None or unknown or not valid_lifetime:
        details = {name: "unknown field" for name in unknown}
        if user is None:
            details["userId"] = "must be 1-128 characters of A-Z a-z 0-9 . _ : @ -"
        if not valid_lifetime:
            details["expiresIn"] = f"must be a whole number of seconds, 1-{MAX_DEV_TOKEN_SECONDS}"
        raise ValidationError(details, "The token request is not valid.")
    return {"success": True, "userId": user, "token": issue(user, lifetime)}, 201
