"""``PolicyCachingTalisman._get_local_options``: upstream's answer, worked out once per view
function, and again after ``init_app``."""

from __future__ import annotations

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
