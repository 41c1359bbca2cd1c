"""What every payload model shares: unknown fields refused, every problem reported at once, and
pydantic's errors turned into the contract's ``details`` (field name -> rule sentence)."""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn, Self

import pydantic
from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from app.errors import ValidationError
from app.payloads.rules import UNKNOWN_FIELD

#: The error type of a rule's own sentence (raised by ``refuse``).
CONTRACT = "contract"
#: pydantic's error type for a field outside the model.
EXTRA = "extra_forbidden"
MISSING = "missing"


class Rule:
    """A field's sentence in ``details`` for any failure without a sentence of its own (a wrong
    type, a pattern, a length). ``items_named``: a list's bad items are named by index
    (``recipientIds[3]``) rather than as the list."""

    __slots__ = ("items_named", "message")

    def __init__(self, message: str, *, items_named: bool = False) -> None:
        self.message = message
        self.items_named = items_named


def refuse(message: str, kind: str = CONTRACT) -> NoReturn:
    """Fail a field's validator with the contract's sentence for it (another ``kind``: a
    sentence the field's Rule replaces)."""
    raise PydanticCustomError(kind, message)


class Payload(BaseModel):
    """A payload of the contract: camelCase on the wire (the field aliases), values after."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, hide_input_in_errors=True, validate_by_name=False
    )

    #: The ``error`` sentence of the refusal (None: ValidationError's own).
    refusal: ClassVar[str | None] = None
    #: The ``details`` sentence for a field the model does not have.
    unknown: ClassVar[str] = UNKNOWN_FIELD
    #: Wire name -> its Rule, read from the fields' metadata.
    rules: ClassVar[dict[str, Rule]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.rules = {
            field.alias or name: rule
            for name, field in cls.model_fields.items()
            for rule in field.metadata
            if isinstance(rule, Rule)
        }

    @classmethod
    def conflicts(cls, payload: dict[str, Any]) -> dict[str, str]:
        """Problems of fields given together (or not at all): none unless a model says so."""
        return {}

    @classmethod
    def check(
        cls,
        payload: dict[str, Any],
        *,
        context: dict[str, Any] | None = None,
        missing: dict[str, str] | None = None,
    ) -> Self:
        """The valid payload, or ValidationError naming every problem.

        ``missing``: the sentence for a required field that is absent, by wire name (default:
        its Rule's)."""
        problems = cls.conflicts(payload)
        try:
            value = cls.model_validate(payload, context=context)
        except pydantic.ValidationError as error:
            details = cls.details(error, missing or {})
            details.update(problems)
            raise ValidationError(details, cls.refusal) from None
        if problems:
            raise ValidationError(problems, cls.refusal)
        return value

    @classmethod
    def details(cls, error: pydantic.ValidationError, missing: dict[str, str]) -> dict[str, str]:
        """The contract's ``details`` of pydantic's errors: unknown fields first (sorted, names
        cut at 64 characters), then each field in the model's order."""
        unknown: dict[str, str] = {}
        found: dict[str, str] = {}
        for line in error.errors(include_url=False, include_context=False, include_input=False):
            location = line["loc"]
            name = str(location[0])[:64] if location else "body"
            if line["type"] == EXTRA:
                unknown[name] = cls.unknown
                continue
            rule = cls.rules.get(name)
            if rule is not None and rule.items_named and len(location) > 1:
                name = f"{name}[{location[1]}]"
            elif line["type"] == MISSING and name in missing:
                found[name] = missing[name]
                continue
            elif rule is not None and (line["type"] != CONTRACT or len(location) > 1):
                found.setdefault(name, rule.message)
                continue
            found.setdefault(name, line["msg"])
        return dict(sorted(unknown.items())) | found
