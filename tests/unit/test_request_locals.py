"""``app.request_locals`` reads Flask's context variables: the objects must be the ones
``flask.request``, ``flask.g`` and ``flask.globals.request_ctx`` stand for (fails when Flask
keeps them elsewhere)."""

from __future__ import annotations

import pytest
from flask import Flask, current_app, g, request
from flask.globals import request_ctx

from app.request_locals import (
    current_flask_app,
    current_g,
    current_request,
    current_request_context,
    environ_key,
)


def test_the_locals_are_the_objects_behind_flasks_proxies() -> None:
    app = Flask(__name__)
    with app.test_request_context("/somewhere"):
        assert current_request() is request._get_current_object()  # type: ignore[attr-defined]
        assert current_g() is g._get_current_object()  # type: ignore[attr-defined]
        assert current_request_context() is request_ctx._get_current_object()  # type: ignore[attr-defined]
        assert current_flask_app() is current_app._get_current_object()  # type: ignore[attr-defined]
        assert current_request().path == "/somewhere"


def test_outside_a_request_they_raise_lookup_error() -> None:
    with pytest.raises(LookupError):
        current_request()
    with pytest.raises(LookupError):
        current_request_context()
    with pytest.raises(LookupError):
        current_flask_app()


@pytest.mark.parametrize(
    "name",
    ["X-API-Key", "Idempotency-Key", "X-Request-ID", "Origin", "Content-Type", "X-Forwarded-Proto"],
)
def test_environ_key_reads_what_request_headers_reads(name: str) -> None:
    app = Flask(__name__)
    headers = {"X-Api-Key": "k", "idempotency-key": "i", "Origin": "o", "Content-Type": "a/b"}
    with app.test_request_context("/", headers=headers):
        assert current_request().environ.get(environ_key(name)) == request.headers.get(name)
        assert (environ_key(name) in current_request().environ) is (name in request.headers)
