"""Webhook API keys: several may be configured (rotation), each compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence


def matching_key(candidate: str | None, keys: Sequence[str]) -> str | None:
    """The configured key equal to ``candidate``, or None.

    Every key is compared, with ``hmac.compare_digest`` on the UTF-8 bytes, so neither the
    position of the matching key nor the length of a common prefix changes the time taken.
    """
    if not candidate or not isinstance(candidate, str):
        return None
    given = candidate.encode()
    found = None
    for key in keys:
        if hmac.compare_digest(given, key.encode()):
            found = key
    return found


def key_id(key: str) -> str:
    """A short, non-reversible name for a key: rate-limit buckets and logs never hold the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]
