"""Raw payloads in, checked values out (or ValidationError naming every problem): the service
side of the payload models in ``app.payloads`` (whose aliases turn camelCase into snake_case).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.errors import ValidationError
from app.payloads.models import NewBatch, NewNotification, ReadRequest
from app.payloads.rules import IDEMPOTENCY_KEY, RECIPIENT_RULE, user_id

__all__ = [
    "RECIPIENT_RULE",
    "NewNotification",
    "NewSend",
    "idempotency_key",
    "require_object",
    "user_id",
    "validate_notification",
    "validate_read",
    "validate_send",
]
#: The webhook without ``recipientId`` nor ``recipientIds``.
NO_RECIPIENT = {"recipientId": "is required (or give recipientIds)"}
BOTH_RECIPIENTS = "give recipientId or recipientIds, not both"


@dataclass(frozen=True, slots=True)
class NewSend:
    """One message for each of ``recipient_ids``: distinct, in the order first given.

    ``batch`` says the request named ``recipientIds`` (answered with a list) rather than
    ``recipientId`` (answered with one notification).
    """

    recipient_ids: tuple[str, ...]
    message: str
    type: str
    data: dict[str, Any] | None
    batch: bool


def require_object(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValidationError({"body": "must be a JSON object"}, "The payload must be an object.")
    return raw


def validate_notification(raw: object, max_message_length: int) -> NewNotification:
    """Check every field of one notification and report every problem at once.

    ``recipientIds`` is not allowed here (the socket event sends to one user): it is refused as
    an unknown field.
    """
    context = {"max_message_length": max_message_length}
    return NewNotification.check(require_object(raw), context=context)


def validate_send(raw: object, max_message_length: int) -> NewSend:
    """A webhook send: the fields of one notification with exactly one of ``recipientId`` and
    ``recipientIds`` (a list of 1-1000 ids, each by the ``recipientId`` rule).

    A bad id rejects the whole send and is named by its index (``recipientIds[3]``); every bad
    one is named. Repeated ids (``42`` and ``"42"`` are the same) count once: the first place an
    id appears gives its place in ``recipient_ids``.
    """
    payload = require_object(raw)
    context = {"max_message_length": max_message_length}
    if "recipientIds" not in payload:
        one = NewNotification.check(payload, context=context, missing=NO_RECIPIENT)
        return NewSend((one.recipient_id,), one.message, one.type, one.data, batch=False)
    if "recipientId" in payload:  # both: the list is not read, the other fields are
        rest = {k: v for k, v in payload.items() if k != "recipientId"}
        details: dict[str, str] = {}
        try:
            NewBatch.check(rest, context=context)
        except ValidationError as error:
            found = (error.details or {}).items()
            details = {k: v for k, v in found if k.partition("[")[0] != "recipientIds"}
        raise ValidationError(details | {"recipientIds": BOTH_RECIPIENTS})
    batch = NewBatch.check(payload, context=context)
    recipients = tuple(dict.fromkeys(batch.recipient_ids))
    return NewSend(recipients, batch.message, batch.type, batch.data, batch=True)


def validate_read(raw: object) -> list[int] | None:
    """``{"ids": [...]}`` gives the ids (distinct, sorted); ``{"all": true}`` gives None
    (every notification)."""
    return ReadRequest.check(require_object(raw)).read_ids()


def idempotency_key(value: str | None) -> str | None:
    """The ``Idempotency-Key`` header's value (None when the header is absent): 1-255 printable
    ASCII characters, compared exactly."""
    if value is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise ValidationError(
            {"Idempotency-Key": "must be 1-255 printable ASCII characters"},
            "The Idempotency-Key header is not valid.",
        )
    return value
