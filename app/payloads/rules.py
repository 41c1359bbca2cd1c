"""The contract's field rules as plain functions and constants: one integer parser, one user-id
rule (and its one message), the text and ``data`` checks the database needs.

The models in ``app.payloads.models`` are built from these; so are the CLI's and the demo
page's checks of a user id.
"""

from __future__ import annotations

import json
import re
from typing import Any

RECIPIENT_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
TYPE = re.compile(r"[a-z0-9._-]{1,64}")
#: The ``Idempotency-Key`` header: 1-255 printable ASCII characters.
IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")
MAX_DATA_BYTES = 8 * 1024
#: Levels of objects and arrays in ``data``, itself included. MariaDB's JSON check refuses more
#: than 31; refused here, such a value would fail the whole INSERT of a batch of sends.
MAX_DATA_DEPTH = 20
DEFAULT_TYPE = "message"
DEFAULT_MAX_MESSAGE_LENGTH = 2000
MAX_RECIPIENTS = 1000
MAX_READ_IDS = 1000
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_ID = 2**63 - 1  # BIGINT: a larger id or cursor is refused rather than sent to the database
#: Integers whose decimal form fits the user-id rule (at most 128 characters).
MIN_USER_NUMBER, MAX_USER_NUMBER = -(10**127 - 1), 10**128 - 1

RECIPIENT_RULE = "must be 1-128 characters of A-Z a-z 0-9 . _ : @ -"
RECIPIENTS_RULE = f"must be a list of 1-{MAX_RECIPIENTS} recipient ids"
TYPE_RULE = "must be 1-64 characters of a-z 0-9 . _ -"
UNICODE_RULE = "must be valid Unicode text (no lone surrogates)"
UNKNOWN_FIELD = "is not an allowed field"


def whole_number(value: object, low: int, high: int, *, digits: bool = False) -> int | None:
    """``value`` as an integer in ``low..high``, else None.

    An int (a bool is not one), or a float without a fraction (``5.0``: JSON Schema, and so our
    OpenAPI document, counts it as an integer). With ``digits``, also a string of ASCII digits
    only (a query parameter, a handshake's ``lastId``), no sign, space or other digit; its length
    is checked before ``int()`` reads it.
    """
    if isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    elif digits and isinstance(value, str):
        if not (value.isascii() and value.isdigit()) or len(value) > len(str(high)):
            return None
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return None


def user_id(value: object) -> str | None:
    """A user id in its string form, or None when it breaks the recipient rule.

    Integers (and floats without a fraction) are taken as their decimal string."""
    number = whole_number(value, MIN_USER_NUMBER, MAX_USER_NUMBER)
    if number is not None:
        return str(number)
    if isinstance(value, str) and RECIPIENT_ID.fullmatch(value):
        return value
    return None


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
