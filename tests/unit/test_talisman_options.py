"""``PolicyCachingTalisman._get_local_options``: upstream's answer, worked out once per view
function, and again after ``init_app``; ``_force_https`` reads the request only for a view that
forces HTTPS."""

from __future__ import annotations

import flask_talisman.talisman
import pytest
from flask import Flask
from flask_talisman import Talisman

from app.patches.flask_talisman import PolicyCachingTalisman


def make_app(talisman: PolicyCachingTalisman, frame_options: str) -> Flask:
    app = Flask(__name__)

    @app.get("/plain")
    def plain() -> str:
        return "plain"

    @app.get("/own")
    @talisman(frame_options="SAMEORIGIN")
    def own() -> str:
        return "own"

    talisman.init_app(app, force_https=False, frame_options=frame_options)
    return app


def test_the_options_are_upstreams_and_made_once_per_view() -> None:
    talisman = PolicyCachingTalisman()
    app = make_app(talisman, "DENY")
    for path, frame in (("/plain", "DENY"), ("/own", "SAMEORIGIN"), ("/nowhere", "DENY")):
        with app.test_request_context(path):
            first = talisman._get_local_options()
            assert first == Talisman._get_local_options(talisman)
            assert first["frame_options"] == frame
            assert first["force_https"] is False
            # Upstream builds a fresh dict for a view without options on every call.
            assert talisman._get_local_options() is first


def test_init_app_forgets_the_options_it_made() -> None:
    talisman = PolicyCachingTalisman()
    app = make_app(talisman, "DENY")
    with app.test_request_context("/plain"):
        assert talisman._get_local_options()["frame_options"] == "DENY"
    talisman.init_app(app, force_https=False, frame_options="SAMEORIGIN")
    with app.test_request_context("/plain"):
        assert talisman._get_local_options()["frame_options"] == "SAMEORIGIN"
        assert talisman._get_local_options() == Talisman._get_local_options(talisman)


class _Unread:
    """Stands for ``flask`` in flask_talisman's module: reading the request fails the test."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"flask.{name} read")


def test_force_https_off_reads_nothing_from_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    talisman = PolicyCachingTalisman()
    app = make_app(talisman, "DENY")
    talisman.session_cookie_secure = True
    with app.test_request_context("/plain"):
        talisman._get_local_options()  # memoised before flask is hidden
        monkeypatch.setattr(flask_talisman.talisman, "flask", _Unread())
        assert talisman._force_https() is None
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_force_https_on_redirects_as_upstream() -> None:
    talisman = PolicyCachingTalisman()
    app = Flask(__name__)
    app.get("/plain")(lambda: "plain")
    talisman.init_app(app, force_https=True)
    with app.test_request_context("/plain", base_url="http://example.test"):
        answer = talisman._force_https()
        assert answer is not None
        assert (answer.status_code, answer.location) == (302, "https://example.test/plain")
    with app.test_request_context("/plain", base_url="https://example.test"):
        assert talisman._force_https() is None
