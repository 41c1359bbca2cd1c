"""``POST /webhook/notify`` and ``/webhook/revoke``: server-to-server calls, authenticated by an
API key."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, request
from werkzeug.exceptions import HTTPException

from app.api.body import read_json_body
from app.errors import ApiError, Unauthorized
from app.observability import metrics
from app.security.api_keys import key_id, matching_key
from app.services import sending
from app.services.validation import require_object
from app.sockets import control

bp = Blueprint("webhook", __name__)
API_KEY_HEADER = "X-API-Key"
API_KEY_FIELD = "apiKey"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


def request_api_key() -> str | None:
    """The configured key this request carries (header first, then the body's ``apiKey``).

    Memoised per request: the rate limiter asks before the view runs. The query string is never
    read, so keys do not end up in access logs.
    """
    if "webhook_key" not in g:
        candidate: Any = request.headers.get(API_KEY_HEADER)
        if not candidate:
            try:
                body = request_body()
            except (ApiError, HTTPException):
                body = None  # the view answers it (raised here, Flask-Limiter would log it)
            if isinstance(body, dict):
                candidate = body.get(API_KEY_FIELD)
        g.webhook_key = matching_key(candidate, current_app.config["WEBHOOK_API_KEY"])
    key: str | None = g.webhook_key
    return key


def request_body() -> object:
    """The parsed JSON body (``read_json_body``), read once per request and shared by the key
    check above and the view: a body whose reading failed half-way (over MAX_CONTENT_LENGTH
    without a Content-Length, a client that stalled or left) cannot be read a second time, and
    would then look like invalid JSON instead of its real error."""
    if "webhook_body" not in g:
        try:
            g.webhook_body = (read_json_body(), None)
        except (ApiError, HTTPException) as failure:
            g.webhook_body = (None, failure)
    body, failed = g.webhook_body
    if failed is not None:
        raise failed
    return body


def has_valid_key() -> bool:
    return request_api_key() is not None


def key_bucket() -> str:
    return "webhook-key:" + key_id(request_api_key() or "")


@bp.post("/webhook/notify")
def notify() -> tuple[dict[str, Any], int]:
    """Called by other servers; 201 with the stored notification (``recipientId``) or
    notifications (``recipientIds``), the first answer again for a repeated ``Idempotency-Key``,
    or the contract's error."""
    body = request_body()
    key = request_api_key()
    if key is None:
        metrics.auth_refused("api_key_invalid")
        raise Unauthorized(message="A valid API key is required (X-API-Key header).")
    payload = {k: v for k, v in require_object(body).items() if k != API_KEY_FIELD}
    answer = sending.submit_many(
        payload,
        sender_id=None,
        idempotency_key_header=request.headers.get(IDEMPOTENCY_KEY_HEADER),
        owner=key_id(key),
    )
    return answer.body, answer.status


@bp.post("/webhook/revoke")
def revoke() -> tuple[dict[str, Any], int]:
    """Called by other servers (a logout, a ban); 200 with how many sockets were ended
    cluster-wide, or the contract's error."""
    body = request_body()
    if request_api_key() is None:
        metrics.auth_refused("api_key_invalid")
        raise Unauthorized(message="A valid API key is required (X-API-Key header).")
    payload = {k: v for k, v in require_object(body).items() if k != API_KEY_FIELD}
    return {"success": True, "disconnected": control.revoke(payload)}, 200
