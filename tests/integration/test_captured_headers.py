"""The webhook's Talisman and CORS headers, replayed from the extensions' own first answer, are
byte for byte what the extensions send (``app.security.captured_headers``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from app.security.captured_headers import CapturedHeaders
from tests.conftest import API_KEY

pytestmark = pytest.mark.integration

ALLOWED = "http://allowed.example"
#: (method, headers, body) of each request shape the webhook route gets.
CASES: dict[str, tuple[str, dict[str, str], Any]] = {
    "plain POST": ("POST", {"X-API-Key": API_KEY}, {"recipientId": "cap", "message": "m"}),
    "allowed Origin": (
        "POST",
        {"X-API-Key": API_KEY, "Origin": ALLOWED},
        {"recipientId": "cap", "message": "m"},
    ),
    "unknown Origin": (
        "POST",
        {"X-API-Key": API_KEY, "Origin": "http://evil.example"},
        {"recipientId": "cap", "message": "m"},
    ),
    "preflight": (
        "OPTIONS",
        {
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "X-API-Key, Content-Type",
        },
        None,
    ),
    "OPTIONS without Origin": ("OPTIONS", {}, None),
    "wrong key": ("POST", {"X-API-Key": "wrong"}, {"recipientId": "cap", "message": "m"}),
    "wrong key, allowed Origin": (
        "POST",
        {"X-API-Key": "wrong", "Origin": ALLOWED},
        {"recipientId": "cap", "message": "m"},
    ),
    "invalid body": ("POST", {"X-API-Key": API_KEY}, {"recipientId": ""}),
    "behind TLS": (
        "POST",
        {"X-API-Key": API_KEY, "X-Forwarded-Proto": "https"},
        {"recipientId": "cap", "message": "m"},
    ),
}


def headers_of(
    app: Flask, method: str, headers: dict[str, str], body: Any
) -> list[tuple[str, str]]:
    client = app.test_client()
    response = client.open(
        "/webhook/notify",
        method=method,
        json=body,
        headers=headers | {"X-Request-ID": "fixed-id"},
    )
    # Content-Length follows the body (each stored notification has its own id).
    return [(k, v) for k, v in response.headers.items() if k != "Content-Length"]


def uncaptured(app: Flask) -> Flask:
    """The same app with the extensions' hooks as they registered them."""
    hooks = app.after_request_funcs[None]
    hooks[:] = [hook.hook if isinstance(hook, CapturedHeaders) else hook for hook in hooks]
    return app


@pytest.mark.parametrize("profile", ["testing", "production"])
def test_captured_headers_are_the_extensions_own(
    make_app: Callable[..., Flask], profile: str
) -> None:
    overrides = {"APP_ENV": profile, "ALLOWED_ORIGINS": f"{ALLOWED},http://other.example"}
    captured = make_app(**overrides)
    reference = uncaptured(make_app(**overrides))
    hooks = [h for h in captured.after_request_funcs[None] if isinstance(h, CapturedHeaders)]
    assert len(hooks) == 2  # Talisman's and Flask-CORS's
    for name, (method, headers, body) in CASES.items():
        expected = headers_of(reference, method, headers, body)
        first = headers_of(captured, method, headers, body)  # the extensions' own answer
        replayed = headers_of(captured, method, headers, body)  # from the capture
        assert first == expected, name
        assert replayed == expected, name
    assert all(hook.captured for hook in hooks)  # the capture was used
