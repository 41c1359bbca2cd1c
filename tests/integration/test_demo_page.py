"""The demo inbox page (app.web): when it is served, the development token endpoint, the
vendored Socket.IO client, and HTML that needs no inline script or style under the CSP."""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import jwt as pyjwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.web import VENDOR_DIR
from tests.conftest import JWT_SECRET

pytestmark = pytest.mark.integration
MakeApp = Callable[..., Flask]
PAGE = "/demo/"
TOKEN = "/demo/token"
CLIENT = "/demo/vendor/socket.io.min.js"


class InlineFinder(HTMLParser):
    """Everything in a page that a ``script-src 'self'; style-src 'self'`` CSP would block."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if "style" in names:
            self.problems.append(f"style= on <{tag}>")
        self.problems += [f"{name}= on <{tag}>" for name in names if name.startswith("on")]
        if tag == "style":
            self.problems.append("<style> element")
        if tag == "script":
            source = dict(attrs).get("src")
            if not source:
                self.problems.append("<script> without src")
            self.scripts.append(source or "")
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append(f"inline script content {data.strip()[:40]!r}")


def get(client: FlaskClient, path: str) -> TestResponse:
    """GET, with the body read and the response closed (send_file holds the file open)."""
    with client.get(path) as response:
        response.get_data()
        return response


def inline_parts(html: str) -> InlineFinder:
    finder = InlineFinder()
    finder.feed(html)
    return finder


@pytest.mark.parametrize(
    "overrides",
    [{"APP_ENV": "development", "DEMO_PAGE": None}, {"APP_ENV": "testing", "DEMO_PAGE": "1"}],
    ids=["development-default", "testing-demo-page"],
)
def test_demo_page_is_served_in_development_and_testing(
    make_app: MakeApp, overrides: dict[str, str | None]
) -> None:
    client = make_app(**overrides).test_client()
    response = client.get(PAGE)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert 'id="dev-token-form"' in response.text
    assert client.post(TOKEN, json={"userId": "alice"}).status_code == 201


def test_demo_page_is_off_in_production_by_default(make_app: MakeApp) -> None:
    app = make_app(APP_ENV="production")
    client = app.test_client()
    for method, path in (("GET", PAGE), ("GET", CLIENT), ("POST", TOKEN)):
        response = client.open(path, method=method, json={"userId": "alice"})
        assert response.status_code == 404, path
        assert response.get_json()["code"] == "not_found"
    assert "web" not in app.blueprints
    assert "dev_tokens" not in app.blueprints


def test_production_with_demo_page_serves_it_but_never_the_token_endpoint(
    make_app: MakeApp,
) -> None:
    app = make_app(APP_ENV="production", DEMO_PAGE="1")
    client = app.test_client()
    page = client.get(PAGE)
    assert page.status_code == 200
    assert 'id="dev-token-form"' not in page.text
    assert get(client, CLIENT).status_code == 200
    refused = client.post(TOKEN, json={"userId": "alice"})
    assert refused.status_code == 404
    assert refused.get_json()["code"] == "not_found"
    assert "dev_tokens" not in app.blueprints


def test_dev_token_endpoint_issues_a_token_for_the_user(make_app: MakeApp) -> None:
    response = make_app(DEMO_PAGE="1").test_client().post(TOKEN, json={"userId": "user-42"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["success"] is True
    assert body["userId"] == "user-42"
    claims = pyjwt.decode(body["token"], JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "user-42"
    assert claims["exp"] - claims["iat"] == 120  # short, so the page's refresh shows
    asked = make_app(DEMO_PAGE="1").test_client().post(TOKEN, json={"userId": "u", "expiresIn": 5})
    claims = pyjwt.decode(asked.get_json()["token"], JWT_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "userId"),
        ({"userId": "has space"}, "userId"),
        ({"userId": "a", "user": "b"}, "user"),
        ({"userId": "a", "expiresIn": 0}, "expiresIn"),
        ({"userId": "a", "expiresIn": "60"}, "expiresIn"),
        ({"userId": "a", "expiresIn": 86401}, "expiresIn"),
    ],
)
def test_dev_token_endpoint_rejects_bad_user_ids(
    make_app: MakeApp, body: dict[str, object], field: str
) -> None:
    response = make_app(DEMO_PAGE="1").test_client().post(TOKEN, json=body)
    assert response.status_code == 400
    error = response.get_json()
    assert error["success"] is False
    assert error["code"] == "validation_error"
    assert field in error["details"]


def test_dev_token_endpoint_wants_json(make_app: MakeApp) -> None:
    response = make_app(DEMO_PAGE="1").test_client().post(TOKEN, data="userId=alice")
    assert response.status_code == 415
    assert response.get_json()["code"] == "unsupported_media_type"


def test_vendor_route_serves_the_socketio_client_from_npm(make_app: MakeApp) -> None:
    assert (VENDOR_DIR / "socket.io.min.js").is_file(), "run npm ci in app/web"
    client = make_app(DEMO_PAGE="1").test_client()
    response = get(client, CLIENT)
    assert response.status_code == 200
    assert response.mimetype in ("text/javascript", "application/javascript")
    assert response.data == (VENDOR_DIR / "socket.io.min.js").read_bytes()
    assert get(client, "/demo/vendor/socket.io.min.js.map").status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/demo/vendor/package.json", "/demo/vendor/socket.io.js", "/demo/vendor/..%2Fpackage.json"],
)
def test_vendor_route_serves_nothing_else(make_app: MakeApp, path: str) -> None:
    response = make_app(DEMO_PAGE="1").test_client().get(path)
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_page_without_the_client_says_to_run_npm_ci(make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app(DEMO_PAGE="1")
    app.config["DEMO_VENDOR_DIR"] = str(tmp_path)
    client = app.test_client()
    page = client.get(PAGE)
    assert page.status_code == 200
    assert 'id="client-missing"' in page.text
    assert "run <code>npm ci</code> in <code>app/web</code>" in page.text
    assert CLIENT not in page.text
    missing = client.get(CLIENT)
    assert missing.status_code == 404
    assert "npm ci in app/web" in missing.get_json()["error"]


def test_page_has_no_inline_script_or_style_and_keeps_the_strict_csp(
    make_app: MakeApp,
) -> None:
    client = make_app(DEMO_PAGE="1").test_client()
    response = client.get(PAGE)
    found = inline_parts(response.text)
    assert found.problems == []
    assert found.scripts == [CLIENT, "/demo/static/inbox.js"]
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "style-src 'self';" in policy
    assert "unsafe-inline" not in policy
    for asset, mimetype in (("inbox.js", "text/javascript"), ("inbox.css", "text/css")):
        served = get(client, f"/demo/static/{asset}")
        assert served.status_code == 200
        assert served.mimetype == mimetype


def test_demo_page_files_are_not_counted_by_the_address_limit(make_app: MakeApp) -> None:
    client = make_app(DEMO_PAGE="1", HTTP_RATE_LIMIT_MAX="2").test_client()
    for _ in range(3):
        for path in (PAGE, CLIENT, "/demo/static/inbox.js", "/demo/static/inbox.css"):
            assert get(client, path).status_code == 200, path
    limited = [client.post(TOKEN, json={"userId": "alice"}).status_code for _ in range(3)]
    assert limited == [201, 201, 429]
