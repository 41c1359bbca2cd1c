"""GET /health: checks the database and Redis, answers 200 or 503 naming the failing part."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import webhook

pytestmark = pytest.mark.integration
CLOSED_PORT = 1  # nothing listens on 127.0.0.1:1; connecting fails at once


def test_health_is_ok_when_every_part_works(
    make_app: Callable[..., Any], redis_url: str | None
) -> None:
    response = make_app().test_client().get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["redis"] == ("ok" if redis_url else "disabled")
    assert body["messageQueue"] == ("ok" if redis_url else "disabled")
    assert isinstance(body["version"], str) and body["uptimeSeconds"] >= 0


def unhealthy(make_app: Callable[..., Any], **settings: str) -> dict[str, Any]:
    """The body of the 503 GET /health answer of an app built with ``settings``."""
    response = make_app(**settings).test_client().get("/health")
    assert response.status_code == 503
    body: dict[str, Any] = response.get_json()
    return body


@pytest.mark.mariadb
def test_health_names_an_unreachable_database(make_app: Callable[..., Any]) -> None:
    body = unhealthy(make_app, DATABASE_URL=f"mysql://root@127.0.0.1:{CLOSED_PORT}/nothing")
    assert body["status"] == "error" and body["database"] == "error" and body["redis"] == "ok"
    assert "database" in body["error"]


@pytest.mark.mariadb
def test_health_names_an_unreachable_redis(make_app: Callable[..., Any]) -> None:
    body = unhealthy(make_app, REDIS_URL=f"redis://127.0.0.1:{CLOSED_PORT}/0")
    assert body["status"] == "error" and body["redis"] == "error" and body["database"] == "ok"
    assert "redis" in body["error"]


def test_health_is_never_rate_limited(make_app: Callable[..., Any]) -> None:
    client = make_app(HTTP_RATE_LIMIT_MAX="2").test_client()
    assert [client.get("/health").status_code for _ in range(5)] == [200] * 5
    guesses = [webhook(client, {}, key="wrong").status_code for _ in range(3)]
    assert guesses == [401, 401, 429]
    assert client.get("/health").status_code == 200
