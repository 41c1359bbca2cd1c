"""``app.patches.flask``: the URL match of a rule without variables comes from a memo, with the
answer upstream's matching gives; errors, redirects and rules with variables are matched every
time; ``MAX_CONTENT_LENGTH`` is read as Flask reads it; JSON answers are Flask's, with one
encoder per set of settings; a URL adapter is upstream's, made once per environ values and
settings."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from typing import Any

import pytest
from flask import Flask, request
from werkzeug.routing.matcher import StateMachineMatcher

from app.patches import flask as flask_patches
from app.patches.flask import NotifyFlask


def make_app(cls: type[Flask] = NotifyFlask) -> Flask:
    app = cls(__name__)
    app.add_url_rule("/plain", "plain", lambda: "plain", methods=["GET"])
    app.add_url_rule("/plain", "posted", lambda: "posted", methods=["POST"])
    app.add_url_rule("/item/<int:number>", "item", lambda number: str(number))
    app.add_url_rule("/folder/", "folder", lambda: "folder")
    return app


@pytest.fixture
def matched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths werkzeug's state machine matched."""
    seen: list[str] = []
    upstream = StateMachineMatcher.match

    def match(self: StateMachineMatcher, domain: str, path: str, *args: Any) -> Any:
        seen.append(path)
        return upstream(self, domain, path, *args)

    monkeypatch.setattr(StateMachineMatcher, "match", match)
    return seen


def answers(app: Flask) -> list[tuple[str, int, bytes, str | None]]:
    client = app.test_client()
    out = []
    for method, path in [
        ("GET", "/plain"),
        ("POST", "/plain"),
        ("PUT", "/plain"),
        ("GET", "/item/7"),
        ("GET", "/item/x"),
        ("GET", "/folder"),
        ("GET", "/nowhere"),
    ]:
        response = client.open(path, method=method)
        out.append((path, response.status_code, response.data, response.headers.get("Allow")))
    return out


def test_a_plain_match_is_matched_once(matched: list[str]) -> None:
    app = make_app()
    client = app.test_client()
    for _ in range(3):
        assert client.get("/plain").data == b"plain"
        assert client.post("/plain").data == b"posted"
    assert matched == ["/plain", "/plain"]


def test_other_answers_are_matched_every_time_and_are_upstreams(matched: list[str]) -> None:
    app = make_app()
    first, second = answers(app), answers(app)
    assert matched.count("/item/7") == 2  # a rule with variables
    assert matched.count("/nowhere") == 2  # 404
    assert matched.count("/folder") == 2  # redirect to /folder/
    assert second == first == answers(make_app(Flask))


def test_the_view_args_are_fresh_and_a_new_rule_clears_the_memo() -> None:
    app = make_app()
    for _ in range(2):
        with app.test_request_context("/plain"):
            assert request.view_args == {}
            request.view_args["changed"] = True  # type: ignore[index]
    app.add_url_rule("/late", "late", lambda: "late")
    client = app.test_client()
    assert client.get("/plain").data == b"plain"
    assert client.get("/late").data == b"late"
    with app.test_request_context("/plain"):
        assert request.view_args == {}


def test_max_content_length_is_flasks() -> None:
    app = make_app()
    app.config["MAX_CONTENT_LENGTH"] = 123
    with app.test_request_context("/plain"):
        assert request.max_content_length == 123
        request.max_content_length = 5
        assert request.max_content_length == 5
    outside = app.request_class({"REQUEST_METHOD": "GET"})
    assert outside.max_content_length is None


VALUES: list[Any] = [
    {"success": True, "notification": {"id": 1, "message": "é ✓ \U0001f600", "n": 1.5}},
    {"b": 1, "a": [None, True, 2**70, "x\u2028y"]},
    [datetime.datetime(2026, 12, 6, 20, 0, tzinfo=datetime.UTC), decimal.Decimal("1.10")],
    {"id": uuid.UUID(int=7)},
    "text",
]


@pytest.mark.parametrize("sort_keys", [True, False])
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_json_answers_are_flasks(sort_keys: bool, ensure_ascii: bool) -> None:
    ours, upstream = make_app(), make_app(Flask)
    for app in (ours, upstream):
        app.json.sort_keys = sort_keys  # type: ignore[attr-defined]
        app.json.ensure_ascii = ensure_ascii  # type: ignore[attr-defined]
    for value in VALUES:
        assert ours.json.dumps(value) == upstream.json.dumps(value)
        assert ours.json.dumps(value, indent=2) == upstream.json.dumps(value, indent=2)
        with ours.app_context():
            mine = ours.json.response(value)
        with upstream.app_context():
            theirs = upstream.json.response(value)
        assert mine.get_data() == theirs.get_data()
        assert mine.headers == theirs.headers


def test_one_encoder_per_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[object] = []
    upstream = json.JSONEncoder.__init__

    def init(self: json.JSONEncoder, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        upstream(self, *args, **kwargs)

    monkeypatch.setattr(json.JSONEncoder, "__init__", init)
    app = make_app()
    with app.app_context():
        for _ in range(3):
            app.json.response({"a": 1})
    assert len(made) == 1
    app.json.sort_keys = False  # type: ignore[attr-defined]
    with app.app_context():
        assert app.json.response({"b": 1, "a": 2}).get_data() == b'{"b":1,"a":2}\n'
    assert len(made) == 2


ADAPTER_FIELDS = (
    "server_name",
    "script_name",
    "subdomain",
    "url_scheme",
    "path_info",
    "default_method",
    "query_args",
    "websocket",
)
ENVIRONS: list[dict[str, Any]] = [
    {"path": "/plain"},
    {"path": "/plain", "base_url": "https://Example.test:443/app"},
    {"path": "/plain?x=1&y=%C3%A9", "base_url": "http://example.test:8080"},
    {"path": "/item/7", "method": "POST", "headers": {"Host": "other.test"}},
    {"path": "/ws", "headers": {"Connection": "keep-alive, Upgrade", "Upgrade": "websocket"}},
    {"path": "/plain", "base_url": "http://bücher.test"},
]


def adapter_of(app: Flask, **kwargs: Any) -> tuple[Any, ...]:
    with app.test_request_context(**kwargs) as ctx:
        adapter = ctx.url_adapter
        assert adapter is not None
        return (adapter, request.host, *(getattr(adapter, f) for f in ADAPTER_FIELDS))


def test_url_adapters_are_upstreams_and_made_once() -> None:
    ours, upstream = make_app(), make_app(Flask)
    for kwargs in ENVIRONS:
        first, second = adapter_of(ours, **kwargs), adapter_of(ours, **kwargs)
        theirs = adapter_of(upstream, **kwargs)
        assert first[1:] == second[1:] == theirs[1:], kwargs
        assert first[0] is second[0]
    assert len(ours.url_adapters) == len(ENVIRONS)  # type: ignore[attr-defined]


def test_an_untrusted_host_is_refused_every_time_and_settings_count() -> None:
    app = make_app()
    app.config["TRUSTED_HOSTS"] = ["good.test"]
    client = app.test_client()
    for _ in range(2):
        assert client.get("/plain", headers={"Host": "good.test"}).status_code == 200
        assert client.get("/plain", headers={"Host": "evil.test"}).status_code == 400
    app.config["SERVER_NAME"] = "good.test"
    with app.test_request_context("/plain", headers={"Host": "good.test"}) as ctx:
        assert ctx.url_adapter is not None
        assert ctx.url_adapter.server_name == "good.test"
        assert request.trusted_hosts == ["good.test"]


def test_adapters_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flask_patches, "MAX_ADAPTERS", 3)
    app = make_app()
    for number in range(6):
        assert adapter_of(app, path=f"/item/{number}")[6] == f"/item/{number}"
    assert len(app.url_adapters) == 3  # type: ignore[attr-defined]
