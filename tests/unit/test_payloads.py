"""The payload models: one integer parser, and docs/EVENTS.md's schemas generated from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.payloads import models
from app.payloads.__main__ import DEFAULT_SETTINGS
from app.payloads.base import Payload
from app.payloads.rules import MAX_ID, user_id, whole_number
from app.payloads.schema import EVENT_PAYLOADS, model_schema, with_events_section
from app.services import storage

pytestmark = pytest.mark.unit
EVENTS = Path(__file__).resolve().parents[2] / "docs" / "EVENTS.md"


def test_docs_events_payload_schemas_are_the_models_schemas() -> None:
    written = EVENTS.read_text(encoding="utf-8")
    assert with_events_section(written, DEFAULT_SETTINGS) == written, (
        "docs/EVENTS.md's payload schemas differ from app/payloads: run python -m app.payloads"
    )


def test_a_changed_model_makes_the_events_check_fail() -> None:
    written = EVENTS.read_text(encoding="utf-8")
    settings = {**DEFAULT_SETTINGS, "MAX_MESSAGE_LENGTH": 7}
    assert with_events_section(written, settings) != written


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, 5), (5.0, 5), (0, 0), (MAX_ID, MAX_ID), (True, None), (False, None), (5.5, None)]
    + [("5", None), (-1, None), (MAX_ID + 1, None), (float("nan"), None), (float("inf"), None)],
)
def test_one_integer_parser_takes_integers_and_integral_floats_only(
    value: object, expected: int | None
) -> None:
    assert whole_number(value, 0, MAX_ID) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("42", 42), ("0", 0), (" 5", None), ("+5", None), ("-5", None), ("1.5", None), ("", None)]
    + [("\u0665", None), (str(MAX_ID), MAX_ID), (str(MAX_ID + 1), None), ("9" * 5000, None)],
)
def test_with_digits_it_reads_ascii_digit_strings_only(text: str, expected: int | None) -> None:
    assert whole_number(text, 0, MAX_ID, digits=True) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(42, "42"), (5.0, "5"), ("u-1", "u-1"), (True, None), (10**128, None), (1e300, None)],
)
def test_a_user_id_is_a_rule_conforming_string_or_integer(
    value: object, expected: str | None
) -> None:
    assert user_id(value) == expected


@pytest.mark.parametrize("model", [*EVENT_PAYLOADS.values(), models.NewBatch, models.PageQuery])
def test_each_schema_names_exactly_the_fields_its_model_takes(model: type[Payload]) -> None:
    schema = model_schema(model, DEFAULT_SETTINGS)
    wire_names = {field.alias or name for name, field in model.model_fields.items()}
    assert set(schema["properties"]) == wire_names
    assert schema["additionalProperties"] is False


def test_the_inbox_status_filters_are_the_ones_the_query_model_takes() -> None:
    assert tuple(storage.STATUS_FILTERS) == models.INBOX_STATUSES
