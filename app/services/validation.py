"""The contract's input rules: raw payloads in, frozen values (``NewNotification``, ``NewSend``)
or ValidationError out.

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
#: Levels of objects and arrays in ``data``, itself included. MariaDB's JSON check refuses more
#: than 31; refused here, such a value would fail the whole INSERT of a batch of sends.
MAX_DATA_DEPTH = 20
DEFAULT_TYPE = "message"
NOTIFICATION_FIELDS = frozenset({"recipientId", "message", "type", "data"})
#: The webhook also takes ``recipientIds`` (a batch) instead of ``recipientId``.
SEND_FIELDS = NOTIFICATION_FIELDS | {"recipientIds"}
MAX_RECIPIENTS = 1000
#: The ``Idempotency-Key`` header: 1-255 printable ASCII characters.
IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")
RECIPIENT_RULE = "must be 1-128 characters of A-Z a-z 0-9 . _ : @ -"
RECIPIENTS_RULE = f"must be a list of 1-{MAX_RECIPIENTS} recipient ids"


@dataclass(frozen=True, slots=True)
class NewNotification:
    recipient_id: str
    message: str
    type: str
    data: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class NewSend:
    """One message for each of ``recipient_ids``: distinct, in the order first given.

    ``batch`` says the request named ``recipientIds`` (answered with a list) rather than
    ``recipientId`` (answered with one notification).
    """

    recipient_ids: tuple[str, ...]
    message: str
    type: str
    data: dict[str, Any] | None
    batch: bool


def require_object(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValidationError({"body": "must be a JSON object"}, "The payload must be an object.")
    return raw


def user_id(value: object) -> str | None:
    """A user id in its string form, or None when it breaks the recipient rule.

    Integers are taken as their decimal string; so is a JSON number with a zero fraction
    (``5.0``), which JSON Schema, and so our OpenAPI document, counts as an integer.
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and RECIPIENT_ID.fullmatch(value):
        return value
    return None


def validate_notification(raw: object, max_message_length: int) -> NewNotification:
    """Check every field of one notification and report every problem at once.

    ``recipientIds`` is not allowed here (the socket event sends to one user): it is refused as
    an unknown field.
    """
    payload = require_object(raw)
    details = unknown_fields(payload, NOTIFICATION_FIELDS)
    recipient = user_id(payload.get("recipientId"))
    if recipient is None:
        details["recipientId"] = RECIPIENT_RULE
    message, kind, data = check_content(payload, max_message_length, details)
    if details or recipient is None:
        raise ValidationError(details)
    return NewNotification(recipient, message, kind, data)


def validate_send(raw: object, max_message_length: int) -> NewSend:
    """A webhook send: the fields of one notification with exactly one of ``recipientId`` and
    ``recipientIds`` (a list of 1-1000 ids, each by the ``recipientId`` rule).

    A bad id rejects the whole send and is named by its index (``recipientIds[3]``); every bad
    one is named. Repeated ids (``42`` and ``"42"`` are the same) count once: the first place an
    id appears gives its place in ``recipient_ids``.
    """
    payload = require_object(raw)
    details = unknown_fields(payload, SEND_FIELDS)
    batch = "recipientIds" in payload
    recipients: list[str] = []
    if batch and "recipientId" in payload:
        details["recipientIds"] = "give recipientId or recipientIds, not both"
    elif batch:
        recipients = check_recipient_ids(payload["recipientIds"], details)
    elif "recipientId" not in payload:
        details["recipientId"] = "is required (or give recipientIds)"
    else:
        recipient = user_id(payload["recipientId"])
        if recipient is None:
            details["recipientId"] = RECIPIENT_RULE
        else:
            recipients = [recipient]
    message, kind, data = check_content(payload, max_message_length, details)
    if details or not recipients:
        raise ValidationError(details)
    return NewSend(tuple(dict.fromkeys(recipients)), message, kind, data, batch)


def check_recipient_ids(value: object, details: dict[str, str]) -> list[str]:
    """The ids of a ``recipientIds`` list, or [] with its problems added to ``details``."""
    if not (isinstance(value, list) and 1 <= len(value) <= MAX_RECIPIENTS):
        details["recipientIds"] = RECIPIENTS_RULE
        return []
    found: list[str] = []
    for index, item in enumerate(value):
        recipient = user_id(item)
        if recipient is None:
            details[f"recipientIds[{index}]"] = RECIPIENT_RULE
        else:
            found.append(recipient)
    return found if len(found) == len(value) else []


def unknown_fields(payload: dict[str, Any], allowed: frozenset[str]) -> dict[str, str]:
    """Fields outside ``allowed``, each named, so typos such as ``recipientID`` do not pass."""
    return {str(name)[:64]: "is not an allowed field" for name in sorted(payload.keys() - allowed)}


def check_content(
    payload: dict[str, Any], max_message_length: int, details: dict[str, str]
) -> tuple[str, str, dict[str, Any] | None]:
    """``message`` (trimmed), ``type`` (defaulted) and ``data``; problems go into ``details``."""
    message = payload.get("message")
    if not isinstance(message, str):
        details["message"] = "must be a string"
        message = ""
    else:
        message = message.strip()
        if not 1 <= len(message) <= max_message_length:
            details["message"] = f"must be 1-{max_message_length} characters after trimming"
        elif not is_unicode_text(message):
            details["message"] = UNICODE_RULE

    kind = payload.get("type")
    if kind is None:
        kind = DEFAULT_TYPE
    elif not (isinstance(kind, str) and TYPE.fullmatch(kind)):
        details["type"] = "must be 1-64 characters of a-z 0-9 . _ -"
        kind = DEFAULT_TYPE

    data = payload.get("data")
    if data is not None:
        if not isinstance(data, dict):
            details["data"] = "must be a JSON object"
            data = None
        elif (problem := data_problem(data)) is not None:
            details["data"] = problem
    return message, kind, data


def idempotency_key(value: str | None) -> str | None:
    """The ``Idempotency-Key`` header's value (None when the header is absent): 1-255 printable
    ASCII characters, compared exactly."""
    if value is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise ValidationError(
            {"Idempotency-Key": "must be 1-255 printable ASCII characters"},
            "The Idempotency-Key header is not valid.",
        )
    return value


UNICODE_RULE = "must be valid Unicode text (no lone surrogates)"


def is_unicode_text(text: str) -> bool:
    """False for a string with a lone surrogate (``"\\ud800"`` in JSON parses to one): it has
    no UTF-8 form, so the database driver would fail on it."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def data_problem(data: dict[str, Any]) -> str | None:
    """Why ``data`` cannot be stored as the JSON the database checks, or None.

    Over MAX_DATA_BYTES once serialised (compact UTF-8), NaN or Infinity (not JSON; a socket
    payload may carry them), a lone surrogate, or nested deeper than MAX_DATA_DEPTH.
    """
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return "must be plain JSON (no NaN or Infinity)"
    except (TypeError, RecursionError):
        return f"must be at most {MAX_DATA_BYTES} bytes once serialised"
    if not is_unicode_text(text):
        return UNICODE_RULE
    if len(text.encode()) > MAX_DATA_BYTES:
        return f"must be at most {MAX_DATA_BYTES} bytes once serialised"
    if nesting_depth(data) > MAX_DATA_DEPTH:
        return f"must nest objects and arrays at most {MAX_DATA_DEPTH} levels deep"
    return None


def nesting_depth(value: object) -> int:
    """Levels of objects and arrays in ``value`` (0 for a scalar), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: list[object] = []
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest
