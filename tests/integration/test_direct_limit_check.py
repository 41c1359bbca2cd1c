"""The webhook's limits checked through ``limits`` directly answer what Flask-Limiter answers:
the same statuses, 429 headers and bodies, counted on the same storage keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from app.patches.flask_limiter import DirectCheck
from tests.conftest import webhook

pytestmark = pytest.mark.integration

LIMITED = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After")


def without_direct_check(app: Flask) -> Flask:
    hooks = app.before_request_funcs[None]
    hooks[:] = [hook for hook in hooks if not isinstance(hook, DirectCheck)]
    limiter = next(iter(app.extensions["limiter"]))
    limiter._request_filters.clear()
    return app


def answers(app: Flask, **kwargs: Any) -> list[tuple[int, dict[str, str], Any]]:
    client = app.test_client()
    out = []
    for _ in range(4):
        response = webhook(client, {"recipientId": "lim", "message": "m"}, **kwargs)
        headers = {k: v for k, v in response.headers.items() if k in LIMITED}
        body = response.get_json()
        out.append((response.status_code, headers, body.get("code")))
    return out


def test_direct_check_answers_as_flask_limiter(make_app: Callable[..., Flask]) -> None:
    env = {"WEBHOOK_RATE_LIMIT": "2/minute", "HTTP_RATE_LIMIT_MAX": "3"}
    direct = make_app(**env)
    reference = without_direct_check(make_app(**env))
    hook = next(h for h in direct.before_request_funcs[None] if isinstance(h, DirectCheck))
    for kwargs in ({}, {"key": "wrong-key"}):  # the per-key limit, then the per-address one
        ours, theirs = answers(direct, **kwargs), answers(reference, **kwargs)
        assert [a[0] for a in ours] == [a[0] for a in theirs]
        assert [a[2] for a in ours] == [a[2] for a in theirs]
        for (_, mine, _), (_, upstream, _) in zip(ours, theirs, strict=True):
            assert mine.keys() == upstream.keys()
            assert mine.get("RateLimit-Limit") == upstream.get("RateLimit-Limit")
            assert mine.get("RateLimit-Remaining") == upstream.get("RateLimit-Remaining")
    assert [status for status, _, _ in answers(direct)] == [429] * 4
    assert any(limits for limits in hook.resolved.values())  # the direct path decided


def test_the_memo_of_resolved_limits_forgets_when_limits_change(
    make_app: Callable[..., Flask],
) -> None:
    from flask_limiter.constants import ExemptionScope

    app = make_app()
    manager = next(iter(app.extensions["limiter"])).limit_manager
    args = (app, "webhook.notify", "webhook", "app.api.webhook.notify", True, False)
    first = manager.resolve_limits(*args)
    assert first and manager.resolve_limits(*args) is first  # answered from the memo
    manager.add_route_exemption("app.api.webhook.notify", ExemptionScope.DEFAULT)
    assert manager.resolve_limits(*args) is not first  # worked out again, not remembered


def test_flask_limiters_own_hook_does_no_work_for_a_request_the_direct_check_decided(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    limiter = next(iter(app.extensions["limiter"]))
    seen: list[str | None] = []
    identify = limiter.identify_request

    def counting() -> str | None:
        seen.append(endpoint := identify())
        return endpoint

    monkeypatch.setattr(limiter, "identify_request", counting)
    client = app.test_client()
    assert webhook(client, {"recipientId": "lim", "message": "m"}).status_code == 201
    assert seen == []  # decided by DirectCheck: Flask-Limiter's hook ended at once
    client.get("/api/notifications")  # another route: Flask-Limiter's own check still runs
    assert seen and seen[-1] == "inbox.list_notifications"
