"""Webhook keys: constant-time comparison against every configured key."""

from __future__ import annotations

import hmac

import pytest

from app.security import api_keys
from app.security.api_keys import key_id, matching_key

pytestmark = pytest.mark.unit
KEYS = ["first-key-aaaaaaaaaaaaaaaa", "second-key-bbbbbbbbbbbbbbb"]


def test_any_configured_key_matches() -> None:
    assert matching_key(KEYS[0], KEYS) == KEYS[0]
    assert matching_key(KEYS[1], KEYS) == KEYS[1]


@pytest.mark.parametrize(
    "candidate", [None, "", "first-key-aaaaaaaaaaaaaaab", "first", KEYS[0] + "x", 12]
)
def test_anything_else_does_not(candidate: object) -> None:
    assert matching_key(candidate, KEYS) is None  # type: ignore[arg-type]


def test_comparison_uses_compare_digest_on_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return real(a, b)

    monkeypatch.setattr(api_keys.hmac, "compare_digest", spy)
    assert matching_key(KEYS[0], KEYS) == KEYS[0]
    assert calls == [k.encode() for k in KEYS]  # no early exit after the match


def test_key_id_does_not_reveal_the_key() -> None:
    assert KEYS[0] not in key_id(KEYS[0]) and len(key_id(KEYS[0])) == 16
