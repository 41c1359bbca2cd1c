"""Security headers, CORS, the HTTP rate limits and the client address behind proxies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import API_KEY, webhook

pytestmark = pytest.mark.integration


def test_security_headers_are_on_every_response(client: FlaskClient) -> None:
    for response in (client.get("/health"), client.get("/missing")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "Strict-Transport-Security" not in response.headers  # testing profile, plain HTTP


def test_production_sends_hsts_on_https_without_redirecting_plain_http(
    make_app: Callable[..., Any],
) -> None:
    app = make_app(APP_ENV="production", JWT_SECRET="p" * 32, WEBHOOK_API_KEY="k" * 24)
    assert app.config["APP_ENV"] == "production"
    client = app.test_client()
    assert client.get("/missing").status_code == 404  # no forced redirect: TLS ends at the LB
    secure = client.get("/missing", base_url="https://localhost")
    assert "max-age" in secure.headers["Strict-Transport-Security"]


def test_force_https_redirects_plain_http(make_app: Callable[..., Any]) -> None:
    client = make_app(FORCE_HTTPS="1").test_client()
    response = client.get("/missing")
    assert response.status_code in (301, 302) and response.location.startswith("https://")


def test_cors_allows_exactly_the_configured_origins(client: FlaskClient) -> None:
    allowed = client.get("/health", headers={"Origin": "http://allowed.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://allowed.example"
    other = client.get("/health", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = client.options(
        "/webhook/notify",
        headers={
            "Origin": "http://allowed.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type, X-API-Key",
        },
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://allowed.example"


def test_anonymous_traffic_is_limited_per_address_with_retry_after(
    make_app: Callable[..., Any], rows: Callable[[str], list[Any]]
) -> None:
    client = make_app(HTTP_RATE_LIMIT_MAX="3").test_client()
    codes = [
        webhook(client, {"recipientId": "u", "message": "m"}, key="wrong-key").status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    limited = webhook(client, {"recipientId": "u", "message": "m"}, key="wrong-key")
    assert limited.status_code == 429
    body = limited.get_json()
    assert body["code"] == "rate_limited" and body["retryAfter"] >= 1
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Limit"] == "3"
    assert rows("notifications") == []


def test_valid_webhook_keys_are_limited_per_key_not_by_the_anonymous_limit(
    make_app: Callable[..., Any],
) -> None:
    client = make_app(HTTP_RATE_LIMIT_MAX="2", WEBHOOK_RATE_LIMIT="4/minute").test_client()
    codes = [webhook(client, {"recipientId": "u", "message": "m"}).status_code for _ in range(5)]
    assert codes == [201, 201, 201, 201, 429]
    assert "Retry-After" not in client.get("/health").headers


def test_rate_limit_headers_are_written_on_429_only(make_app: Callable[..., Any]) -> None:
    """Reading the window for the headers costs a storage round trip: only 429s carry them."""
    client = make_app(WEBHOOK_RATE_LIMIT="2/minute").test_client()
    answers = [webhook(client, {"recipientId": "u", "message": "m"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    for accepted in answers[:2]:
        assert not {"RateLimit-Limit", "RateLimit-Remaining", "Retry-After"} & set(
            accepted.headers.keys()
        )
    limited = answers[2]
    assert limited.headers["RateLimit-Limit"] == "2"
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert int(limited.headers["RateLimit-Reset"]) > 0
    assert 0 < int(limited.headers["Retry-After"]) <= 60


def test_client_address_ignores_x_forwarded_for_unless_proxies_are_trusted(
    make_app: Callable[..., Any],
) -> None:
    def guess(client: FlaskClient, address: str) -> int:
        return webhook(
            client,
            {"recipientId": "u", "message": "m"},
            key="wrong",
            headers={"X-Forwarded-For": address},
        ).status_code

    direct = make_app(HTTP_RATE_LIMIT_MAX="2").test_client()
    codes = [guess(direct, spoofed) for spoofed in ("1.1.1.1", "2.2.2.2", "3.3.3.3")]
    assert codes == [401, 401, 429]  # the header did not buy fresh buckets

    proxied = make_app(HTTP_RATE_LIMIT_MAX="2", TRUSTED_PROXIES="1").test_client()
    codes = [guess(proxied, f"9.9.9.{i}") for i in range(4)]
    assert codes == [401] * 4  # behind one trusted proxy each client has its own bucket


def test_key_in_body_counts_as_authenticated(make_app: Callable[..., Any]) -> None:
    client = make_app(HTTP_RATE_LIMIT_MAX="1").test_client()
    codes = [
        webhook(
            client, {"recipientId": "u", "message": "m", "apiKey": API_KEY}, key=None
        ).status_code
        for _ in range(3)
    ]
    assert codes == [201, 201, 201]
