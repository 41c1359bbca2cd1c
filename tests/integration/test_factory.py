"""The application factory, the embedded default, the banner and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import pytest
import sqlalchemy as sa

from app import create_app
from app.banner import render
from app.extensions import db
from app.registry import services
from config import ConfigError
from tests.conftest import JWT_SECRET, webhook

pytestmark = pytest.mark.integration


def test_the_factory_reports_every_configuration_problem(tmp_path) -> None:
    with pytest.raises(ConfigError) as caught:
        create_app("production", {"ALLOWED_ORIGINS": "*"}, instance_path=str(tmp_path))
    assert len(caught.value.problems) == 3
    assert "JWT_SECRET is missing" in str(caught.value)


def test_nothing_configured_starts_on_migrated_sqlite_with_a_banner(tmp_path) -> None:
    app = create_app(None, {}, instance_path=str(tmp_path))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/notify.sqlite3"
    with app.app_context():
        assert {"notifications", "connection_logs"} <= set(sa.inspect(db.engine).get_table_names())
        db.engine.dispose()
    banner = render(app)
    key = app.config["WEBHOOK_API_KEY"][0]
    assert "in-process" in banner and "development secrets generated" in banner
    assert f"X-API-Key: {key}" in banner and "curl" in banner
    token = banner.split("token (user-123, 24 h): ")[1].split()[0]
    claims = pyjwt.decode(token, app.config["JWT_SECRET"], algorithms=["HS256"])
    assert claims["sub"] == "user-123"
    response = webhook(app.test_client(), {"recipientId": "user-123", "message": "hi"}, key=key)
    assert response.status_code == 201


def test_issue_token_prints_a_token_for_the_user(app: Any) -> None:
    result = app.test_cli_runner().invoke(args=["issue-token", "user-7", "--expires", "1h"])
    assert result.exit_code == 0, result.output
    claims = pyjwt.decode(result.output.strip(), JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "user-7" and claims["exp"] - claims["iat"] == 3600


@pytest.mark.parametrize(
    "args", [["issue-token", "bad user"], ["issue-token", "u", "--expires", "soon"]]
)
def test_issue_token_refuses_bad_input(app: Any, args: list[str]) -> None:
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code != 0 and "Invalid value" in result.output


@pytest.mark.mariadb
def test_http_rate_limit_is_shared_by_two_app_instances_through_redis(
    make_app: Callable[..., Any],
) -> None:
    first = make_app(HTTP_RATE_LIMIT_MAX="3", REDIS_PREFIX="notify-shared-limit-test")
    second = make_app(HTTP_RATE_LIMIT_MAX="3", REDIS_PREFIX="notify-shared-limit-test")
    clients = [first.test_client(), second.test_client()]
    try:
        codes = [webhook(clients[i % 2], {}, key="wrong").status_code for i in range(4)]
        assert codes == [401, 401, 401, 429]
        assert "Retry-After" in webhook(clients[0], {}, key="wrong").headers
    finally:
        client = services(first).redis  # keys start with the deployment's prefix
        for key in client.scan_iter(match="notify-shared-limit-test*"):
            client.delete(key)
