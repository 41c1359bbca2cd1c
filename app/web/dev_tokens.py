"""``POST /demo/token``: a token for any user id, for the demo page in development and testing.

Registered by ``app.web.register`` only in those profiles: in production tokens come from the
service's own users (``flask issue-token`` or the product's login), never from this route.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from app.api.body import read_json_body
from app.errors import ValidationError
from app.security.tokens import issue
from app.services.validation import user_id

bp = Blueprint("dev_tokens", __name__, url_prefix="/demo")


@bp.post("/token")
def dev_token() -> tuple[dict[str, Any], int]:
    """Called by the demo page's "Get a development token" button with ``{"userId": ...}``;
    201 with a token for that user, 400 ``validation_error`` for a bad or missing id."""
    body = read_json_body()
    unknown = sorted(set(body) - {"userId"}) if isinstance(body, dict) else []
    user = user_id(body.get("userId")) if isinstance(body, dict) else None
    if user is None or unknown:
        details = {name: "unknown field" for name in unknown}
        if user is None:
            details["userId"] = "must be 1-128 characters of A-Z a-z 0-9 . _ : @ -"
        raise ValidationError(details, "The user id is not valid.")
    return {"success": True, "userId": user, "token": issue(user)}, 201
