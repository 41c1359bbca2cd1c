"""The OpenAPI document: valid 3.1, covering every route, and true of the running app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import given, settings
from openapi_spec_validator import validate

from app.extensions import db
from tests.conftest import API_KEY, REPRODUCIBLE

pytestmark = pytest.mark.integration
UNDOCUMENTED = {"/socket.io/"}  # the Socket.IO endpoint is described in docs/EVENTS.md


def test_the_document_is_valid_openapi_3_1(client: Any) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_document_covers_every_route_and_method(app: Flask, client: Any) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    for rule in app.url_map.iter_rules():
        if rule.rule in UNDOCUMENTED:
            continue
        assert rule.rule in paths, rule.rule
        documented = {method.upper() for method in paths[rule.rule]}
        assert (rule.methods or set()) - {"HEAD", "OPTIONS"} <= documented, rule.rule


def test_the_document_follows_the_configuration(make_app: Callable[..., Flask]) -> None:
    document = make_app(MAX_MESSAGE_LENGTH="300").test_client().get("/openapi.json").get_json()
    message = document["components"]["schemas"]["NewNotification"]["properties"]["message"]
    assert message["maxLength"] == 300


def test_schemathesis_finds_no_server_error_and_no_broken_response(
    make_app: Callable[..., Flask], token: Callable[..., str]
) -> None:
    """Every operation, with generated valid and invalid input, answered as documented."""
    app = make_app(MESSAGE_QUEUE="0")
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    headers = {"X-API-Key": API_KEY, "Authorization": f"Bearer {token('schemathesis-user')}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {operation.label for operation in operations}
    assert {
        "POST /webhook/notify",
        "GET /api/notifications",
        "POST /api/notifications/read",
        "GET /health",
        "GET /metrics",
    } <= labels

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(REPRODUCIBLE, max_examples=25)
        def check(case: Any) -> None:
            try:
                case.call_and_validate(headers=headers)
            finally:
                with app.app_context():
                    db.session.remove()

        check()
