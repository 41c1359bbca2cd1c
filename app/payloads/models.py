"""Every input payload of the contract, declared once: the webhook's send (one recipient or a
batch), the socket events' payloads, the revocation and the inbox query.

Each field is a type below: its validator, its ``details`` sentence (``Rule``) and its JSON
Schema side by side. The OpenAPI document and docs/EVENTS.md are generated from these models
(``app.payloads.schema``). Models are validated in strict mode on the parsed JSON, so a bool
never passes as an integer and a string never as a number (except where a rule says so).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from app.payloads.base import Payload, Rule, refuse
from app.payloads.rules import (
    DEFAULT_MAX_MESSAGE_LENGTH,
    DEFAULT_PAGE_SIZE,
    DEFAULT_TYPE,
    MAX_DATA_BYTES,
    MAX_ID,
    MAX_PAGE_SIZE,
    MAX_READ_IDS,
    MAX_RECIPIENTS,
    MAX_USER_NUMBER,
    RECIPIENT_ID,
    RECIPIENT_RULE,
    RECIPIENTS_RULE,
    TYPE,
    TYPE_RULE,
    UNICODE_RULE,
    data_problem,
    is_unicode_text,
    user_id,
    whole_number,
)

#: The JSON Schema key an ``app.payloads.schema`` generator replaces by a configured value.
FROM_SETTING = "x-fromSetting"
WHOLE_NUMBER = "whole_number"
#: The inbox's ``status`` filters (``unread``: pending or delivered; ``storage.STATUS_FILTERS``).
InboxStatus = Literal["pending", "delivered", "read", "unread"]
INBOX_STATUSES: tuple[str, ...] = get_args(InboxStatus)


def _user_id(value: object) -> str:
    found = user_id(value)
    if found is None:
        refuse(RECIPIENT_RULE)
    return found


UserId = Annotated[
    str,
    PlainValidator(_user_id),
    Rule(RECIPIENT_RULE),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": f"^{RECIPIENT_ID.pattern}$"},
                {"type": "integer", "minimum": 0, "maximum": MAX_USER_NUMBER},
            ]
        }
    ),
]


def _message(value: object, info: ValidationInfo) -> str:
    """Trimmed, then 1 to MAX_MESSAGE_LENGTH characters (the running configuration's, given
    as the ``max_message_length`` context), with a UTF-8 form."""
    if not isinstance(value, str):
        refuse("must be a string")
    longest = (info.context or {}).get("max_message_length", DEFAULT_MAX_MESSAGE_LENGTH)
    text = value.strip()
    if not 1 <= len(text) <= longest:
        refuse(f"must be 1-{longest} characters after trimming")
    if not is_unicode_text(text):
        refuse(UNICODE_RULE)
    return text


Message = Annotated[
    str,
    PlainValidator(_message),
    Rule("must be a string"),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": DEFAULT_MAX_MESSAGE_LENGTH,
            # Trimmed before the length check: at least one non-space character.
            "pattern": r"\S",
            FROM_SETTING: {"maxLength": "MAX_MESSAGE_LENGTH"},
        }
    ),
]

Kind = Annotated[
    str,
    Field(pattern=f"^{TYPE.pattern}$"),
    # ``"type": null`` is the default type, as an absent one is.
    BeforeValidator(lambda value: DEFAULT_TYPE if value is None else value),
    Rule(TYPE_RULE),
]


def _data(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and (problem := data_problem(value)) is not None:
        refuse(problem)
    return value


Data = Annotated[
    dict[str, Any] | None,
    AfterValidator(_data),
    Rule("must be a JSON object"),
    WithJsonSchema(
        {
            "anyOf": [{"type": "object"}, {"type": "null"}],
            "description": f"At most {MAX_DATA_BYTES} bytes once serialised.",
        }
    ),
]


class Whole:
    """An integer field in ``low..high`` read by ``rules.whole_number`` (``digits``: also from a
    string of ASCII digits, as in a query string), with its JSON Schema from the same bounds."""

    __slots__ = ("digits", "high", "low")

    def __init__(self, low: int, high: int, *, digits: bool = False) -> None:
        self.low, self.high, self.digits = low, high, digits

    def parse(self, value: object) -> int:
        number = whole_number(value, self.low, self.high, digits=self.digits)
        if number is None:  # a field's own Rule, if it has one, says it better
            refuse(f"must be an integer from {self.low} to {self.high}", kind=WHOLE_NUMBER)
        return number

    def __get_pydantic_core_schema__(
        self, _source: type[Any], _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.parse)

    def __get_pydantic_json_schema__(
        self, _schema: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


NotificationId = Annotated[int, Whole(1, MAX_ID)]


class NewNotification(Payload):
    """One notification to one user: the ``send_notification`` event, and the webhook with
    ``recipientId``."""

    recipient_id: UserId = Field(alias="recipientId")
    message: Message
    type: Kind = DEFAULT_TYPE
    data: Data = None


class NewBatch(Payload):
    """The webhook with ``recipientIds``: one message for each of 1-1000 users."""

    recipient_ids: Annotated[
        list[UserId],
        Field(min_length=1, max_length=MAX_RECIPIENTS),
        Rule(RECIPIENTS_RULE, items_named=True),
    ] = Field(alias="recipientIds")
    message: Message
    type: Kind = DEFAULT_TYPE
    data: Data = None


class ReadRequest(Payload):
    """``mark_read`` and ``POST /api/notifications/read``: ``{ids}`` or ``{all: true}``."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["ids"]}, {"required": ["all"]}]}
    )
    refusal: ClassVar[str | None] = "The read request is not valid."

    ids: Annotated[
        list[NotificationId] | None,
        Field(min_length=1, max_length=MAX_READ_IDS),
        Rule(f"must be a list of 1-{MAX_READ_IDS} positive integer ids"),
    ] = None
    all: Annotated[Literal[True] | None, Rule("must be true")] = None

    @classmethod
    def conflicts(cls, payload: dict[str, Any]) -> dict[str, str]:
        if (payload.get("ids") is None) == (payload.get("all") is None):
            return {"ids": "give either ids or all: true"}
        return {}

    def read_ids(self) -> list[int] | None:
        """The ids to mark read, distinct and sorted; None for every notification."""
        return None if self.ids is None else sorted(set(self.ids))


class RefreshRequest(Payload):
    """``refresh_token``: the new token (checked by ``security.tokens``, not here)."""

    refusal: ClassVar[str | None] = "The refresh request is not valid."

    token: Annotated[
        Any,
        Rule("is required"),
        WithJsonSchema({"type": "string", "description": "A JWT, optional `Bearer ` prefix."}),
    ]


def _time(value: object) -> datetime:
    """An ISO 8601 time with a zone (``Z`` or an offset) as naive UTC."""
    if isinstance(value, str) and 10 <= len(value) <= 40:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC).replace(tzinfo=None)
    refuse("must be an ISO 8601 time with a zone, e.g. 2026-12-01T10:00:00Z")


class Revocation(Payload):
    """``POST /webhook/revoke``: the user, and the cut-off (default now)."""

    refusal: ClassVar[str | None] = "The revocation is not valid."

    user_id: UserId = Field(alias="userId")
    before: Annotated[
        datetime | None,
        PlainValidator(lambda value: None if value is None else _time(value)),
        WithJsonSchema(
            {
                "type": "string",
                "format": "date-time",
                "description": "Tokens issued (iat) at or before it are revoked; default now. "
                "A token without iat counts as issued at 0.",
            }
        ),
    ] = None


class PageQuery(Payload):
    """``GET /api/notifications``'s query, each parameter given once."""

    refusal: ClassVar[str | None] = "The query is not valid."
    unknown: ClassVar[str] = "is not an allowed parameter"

    limit: Annotated[
        int,
        Whole(1, MAX_PAGE_SIZE, digits=True),
        Rule(f"must be an integer from 1 to {MAX_PAGE_SIZE}"),
    ] = DEFAULT_PAGE_SIZE
    before: Annotated[
        Annotated[int, Whole(1, MAX_ID, digits=True)] | None,
        Rule("must be a positive integer id"),
    ] = None
    after: Annotated[
        Annotated[int, Whole(0, MAX_ID, digits=True)] | None,
        Rule("must be an integer id, 0 or more"),
        Field(
            description="Catch-up: ids greater than this one, oldest first (after a truncated "
            "replay_complete); with before too, the ids between."
        ),
    ] = None
    status: Annotated[
        InboxStatus | None,
        Rule("must be one of " + ", ".join(INBOX_STATUSES)),
    ] = None


DEV_TOKEN_SECONDS = 120
MAX_DEV_TOKEN_SECONDS = 86400


class DevTokenRequest(Payload):
    """``POST /demo/token`` (the demo page, development and testing only)."""

    refusal: ClassVar[str | None] = "The token request is not valid."
    unknown: ClassVar[str] = "unknown field"

    user_id: UserId = Field(alias="userId")
    expires_in: Annotated[
        int,
        Whole(1, MAX_DEV_TOKEN_SECONDS),
        Rule(f"must be a whole number of seconds, 1-{MAX_DEV_TOKEN_SECONDS}"),
    ] = Field(DEV_TOKEN_SECONDS, alias="expiresIn")
