"""``POST /webhook/notify`` and ``/webhook/revoke``: server-to-server calls, authenticated by an
API key (``security.authentication.api_key_required``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from werkzeug.sansio.response import Response as SansIOResponse

from app.patches.flask import json_response
from app.request_body import request_body
from app.request_locals import current_request, environ_key
from app.security.authentication import API_KEY_FIELD, api_key_required
from app.services import sending
from app.services.validation import require_object
from app.sockets import control

bp = Blueprint("webhook", __name__)
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_KEY = environ_key(IDEMPOTENCY_KEY_HEADER)


def payload() -> dict[str, Any]:
    """The body without the ``apiKey`` it may carry."""
    return {k: v for k, v in require_object(request_body()).items() if k != API_KEY_FIELD}


@bp.post("/webhook/notify")
@api_key_required
def notify(key_id: str) -> tuple[SansIOResponse, int]:
    """Called by other servers; 201 with the stored notification (``recipientId``) or
    notifications (``recipientIds``, encoded once per shape: ``json_response``), the first
    answer again for a repeated ``Idempotency-Key``, or the contract's error."""
    answer = sending.submit_many(
        payload(),
        sender_id=None,
        idempotency_key_header=current_request().environ.get(_IDEMPOTENCY_KEY),
        owner=key_id,
    )
    return json_response(answer.body), answer.status


@bp.post("/webhook/revoke")
@api_key_required
def revoke(_key_id: str) -> tuple[dict[str, Any], int]:
    """Called by other servers (a logout, a ban); 200 with how many sockets were ended
    cluster-wide, or the contract's error."""
    return {"success": True, "disconnected": control.revoke(payload())}, 200
