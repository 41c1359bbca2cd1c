"""The contract's input rules: raw payloads in, a frozen ``NewNotification`` or ValidationError out.

This is the only place camelCase input becomes snake_case values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from app.errors import ValidationError

RECIPIENT_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
TYPE = re.compile(r"[a-z0-9._-]{1,64}")
MAX_DATA_BYTES = 8 * 1024
DEFAULT_TYPE = "message"
NOTIFICATION_FIELDS = frozenset({"recipientId", "message", "type", "data"})


@dataclass(frozen=True, slots=True)
class NewNotification:
    recipient_id: str
    message: str
    type: str
    data: dict[str, Any] | None


def require_object(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValidationError({"body": "must be a JSON object"}, "The payload must be an object.")
    return raw


def user_id(value: object) -> str | None:
    """A user id in its string form, or None when it breaks the recipient rule."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and RECIPIENT_ID.fullmatch(value):
        return value
    return None


def validate_notification(raw: object, max_message_length: int) -> NewNotification:
    """Check every field of one notification and report every problem at once."""
    payload = require_object(raw)
    details: dict[str, str] = {}
    for name in sorted(payload.keys() - NOTIFICATION_FIELDS):
        details[str(name)[:64]] = "is not an allowed field"

    recipient = user_id(payload.get("recipientId"))
    if recipient is None:
        details["recipientId"] = "must be 1-128 characters of A-Z a-z 0-9 . _ : @ -"

    message = payload.get("message")
    if not isinstance(message, str):
        details["message"] = "must be a string"
        message = ""
    else:
        message = message.strip()
        if not 1 <= len(message) <= max_message_length:
            details["message"] = f"must be 1-{max_message_length} characters after trimming"

    kind = payload.get("type")
    if kind is None:
        kind = DEFAULT_TYPE
    elif not (isinstance(kind, str) and TYPE.fullmatch(kind)):
        details["type"] = "must be 1-64 characters of a-z 0-9 . _ -"

    data = payload.get("data")
    if data is not None:
        if not isinstance(data, dict):
            details["data"] = "must be a JSON object"
        elif serialised_size(data) > MAX_DATA_BYTES:
            details["data"] = f"must be at most {MAX_DATA_BYTES} bytes once serialised"

    if details or recipient is None:
        raise ValidationError(details)
    return NewNotification(recipient, message, kind, data)


def serialised_size(data: dict[str, Any]) -> int:
    """Bytes of compact UTF-8 JSON; anything that cannot be serialised counts as too big."""
    try:
        return len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())
    except (TypeError, ValueError, RecursionError):
        return MAX_DATA_BYTES + 1
