"""Which HTTP traffic the per-address default limit skips.

Authenticated backends have their own per-key limit (``WEBHOOK_RATE_LIMIT``), so a busy sender is
not throttled by the anonymous limit; requests with a wrong or missing key still count per address,
which slows key guessing.
"""

from __future__ import annotations

from flask import request

from app.api.webhook import has_valid_key

WEBHOOK_PATH = "/webhook/notify"


def authenticated_traffic() -> bool:
    return request.path == WEBHOOK_PATH and request.method == "POST" and has_valid_key()
