"""The contract's input rules, one by one."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import ValidationError
from app.services.validation import validate_notification

pytestmark = pytest.mark.unit


def problems(raw: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        validate_notification(raw, 2000)
    assert caught.value.details is not None
    return caught.value.details


def test_a_minimal_notification_gets_defaults() -> None:
    new = validate_notification({"recipientId": "user-123", "message": "  hi  "}, 2000)
    assert (new.recipient_id, new.message, new.type, new.data) == (
        "user-123",
        "hi",
        "message",
        None,
    )


def test_integer_recipient_is_taken_as_its_decimal_string() -> None:
    assert validate_notification({"recipientId": 42, "message": "x"}, 2000).recipient_id == "42"


@pytest.mark.parametrize("length", [1, 2000])
def test_message_length_boundaries_pass(length: int) -> None:
    assert (
        len(validate_notification({"recipientId": "u", "message": "m" * length}, 2000).message)
        == length
    )


@pytest.mark.parametrize("message", ["", "   ", "m" * 2001, None, 5, ["x"]])
def test_message_outside_the_rules_is_refused(message: Any) -> None:
    assert "message" in problems({"recipientId": "u", "message": message})


@pytest.mark.parametrize("recipient", ["", "a b", "x/y", "é", "r" * 129, True, None, 1.5, {"a": 1}])
def test_recipient_outside_the_rules_is_refused(recipient: Any) -> None:
    assert "recipientId" in problems({"recipientId": recipient, "message": "m"})


def test_every_allowed_recipient_character_passes() -> None:
    rid = "AZaz09._:@-" + "r" * 117
    assert validate_notification({"recipientId": rid, "message": "m"}, 2000).recipient_id == rid


@pytest.mark.parametrize("kind", ["", "Alert", "a b", "t" * 65, 3])
def test_type_outside_the_rules_is_refused(kind: Any) -> None:
    assert "type" in problems({"recipientId": "u", "message": "m", "type": kind})


def test_data_must_be_a_small_object() -> None:
    assert "data" in problems({"recipientId": "u", "message": "m", "data": [1, 2]})
    assert "data" in problems({"recipientId": "u", "message": "m", "data": {"b": "x" * 8200}})
    ok = validate_notification(
        {"recipientId": "u", "message": "m", "data": {"b": "x" * 8000}}, 2000
    )
    assert ok.data == {"b": "x" * 8000}


def test_unknown_fields_are_named() -> None:
    found = problems({"recipientID": "u", "message": "m"})
    assert found["recipientID"] == "is not an allowed field"
    assert "recipientId" in found


@pytest.mark.parametrize("raw", [None, "text", [1], 3])
def test_a_payload_that_is_not_an_object_is_refused(raw: Any) -> None:
    assert problems(raw) == {"body": "must be a JSON object"}


def test_every_problem_is_reported_at_once() -> None:
    assert set(problems({"message": "", "type": "X", "data": 1})) == {
        "recipientId",
        "message",
        "type",
        "data",
    }


def test_a_json_number_with_a_zero_fraction_counts_as_an_integer_recipient() -> None:
    assert validate_notification({"recipientId": 5.0, "message": "x"}, 2000).recipient_id == "5"
    assert "recipientId" in problems({"recipientId": 5.5, "message": "x"})


def nested(levels: int) -> dict[str, Any]:
    data: Any = 1
    for _ in range(levels):
        data = {"a": data}
    return data


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"n": float("nan")}, "must be plain JSON (no NaN or Infinity)"),
        ({"n": [float("inf")]}, "must be plain JSON (no NaN or Infinity)"),
        ({"k": "\ud800"}, "must be valid Unicode text (no lone surrogates)"),
        ({"\udfff": 1}, "must be valid Unicode text (no lone surrogates)"),
        (nested(21), "must nest objects and arrays at most 20 levels deep"),
        (
            {"a": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]},
            "must nest objects and arrays at most 20 levels deep",
        ),
    ],
)
def test_data_the_database_would_refuse_is_refused_here(data: Any, problem: str) -> None:
    """MariaDB's JSON check refuses these; in a batched INSERT they would fail every send."""
    assert problems({"recipientId": "u", "message": "m", "data": data}) == {"data": problem}


def test_data_twenty_levels_deep_passes() -> None:
    new = validate_notification({"recipientId": "u", "message": "m", "data": nested(20)}, 2000)
    assert new.data == nested(20)


def test_a_message_with_a_lone_surrogate_is_refused() -> None:
    assert problems({"recipientId": "u", "message": "a\ud800b"}) == {
        "message": "must be valid Unicode text (no lone surrogates)"
    }
