"""``GET /openapi.json``: the OpenAPI 3.1 document, built from the code's own rules and types.

Nothing here is a hand-kept copy of a rule: field patterns and limits come from
``services.validation`` and the running configuration, object shapes from the ``TypedDict``s the
code returns (``NotificationDict``, ``ErrorBody``), error codes from ``ErrorCode``.
"""

from __future__ import annotations

import types
from typing import Any, NotRequired, Union, get_args, get_origin, get_type_hints

from flask import Blueprint, current_app

from app.errors import ErrorBody, ErrorCode
from app.models import NotificationDict, Status
from app.services import inbox, storage, validation
from app.version import VERSION

bp = Blueprint("openapi", __name__)
JSON = "application/json"


def python_type_schema(annotation: Any) -> dict[str, Any]:
    """JSON Schema of a (simple) Python annotation: str, int, bool, None, dict, list, unions."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = [python_type_schema(arg) for arg in get_args(annotation)]
        return {"anyOf": options}
    if origin is NotRequired:
        return python_type_schema(get_args(annotation)[0])
    if annotation is type(None):
        return {"type": "null"}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is str:
        return {"type": "string"}
    if annotation is dict or origin is dict:
        return {"type": "object"}
    if origin is list:
        return {"type": "array", "items": python_type_schema(get_args(annotation)[0])}
    raise TypeError(f"no JSON Schema for {annotation!r}")


def typed_dict_schema(cls: type) -> dict[str, Any]:
    """An object schema from a TypedDict: its keys, their types, which are required."""
    hints = get_type_hints(cls, include_extras=True)
    return {
        "type": "object",
        "properties": {name: python_type_schema(hint) for name, hint in hints.items()},
        # Read from the hints: with postponed annotations ``__required_keys__`` lists every key.
        "required": sorted(k for k, hint in hints.items() if get_origin(hint) is not NotRequired),
        "additionalProperties": False,
    }


def notification_schema() -> dict[str, Any]:
    schema = typed_dict_schema(NotificationDict)
    schema["properties"]["status"] = {"type": "string", "enum": [s.value for s in Status]}
    for name in ("createdAt", "deliveredAt", "readAt"):
        schema["properties"][name]["anyOf"][0]["format"] = "date-time"
    return schema


def error_schema() -> dict[str, Any]:
    schema = typed_dict_schema(ErrorBody)
    schema["properties"]["code"] = {"type": "string", "enum": [c.value for c in ErrorCode]}
    schema["properties"]["success"] = {"const": False}
    schema["properties"]["details"] = {
        "type": "object",
        "additionalProperties": {"type": "string"},
    }
    schema["properties"]["retryAfter"] = {"type": "integer", "minimum": 1}
    return schema


def user_id_schema() -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "string", "pattern": f"^{validation.RECIPIENT_ID.pattern}$"},
            {"type": "integer", "minimum": 0, "maximum": 10**127},
        ]
    }


def new_notification_schema(recipient: dict[str, Any]) -> dict[str, Any]:
    """The input rules of ``validation.validate_send``, field by field, for one way of naming
    the recipient (``recipientId``, or ``recipientIds`` for a batch)."""
    max_message = current_app.config["MAX_MESSAGE_LENGTH"]
    return {
        "type": "object",
        "properties": {
            **recipient,
            # Trimmed before the length check: at least one non-space character.
            "message": {
                "type": "string",
                "minLength": 1,
                "maxLength": max_message,
                "pattern": r"\S",
            },
            "type": {"type": "string", "pattern": f"^{validation.TYPE.pattern}$"},
            "data": {
                "anyOf": [{"type": "object"}, {"type": "null"}],
                "description": f"At most {validation.MAX_DATA_BYTES} bytes once serialised.",
            },
            "apiKey": {"type": "string", "description": "The webhook key, if not in X-API-Key."},
        },
        "required": [*recipient, "message"],
        "additionalProperties": False,
    }


def read_request_schema() -> dict[str, Any]:
    return {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "ids": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 1, "maximum": inbox.MAX_ID},
                        "minItems": 1,
                        "maxItems": inbox.MAX_READ_IDS,
                    }
                },
                "required": ["ids"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"all": {"const": True}},
                "required": ["all"],
                "additionalProperties": False,
            },
        ]
    }


def revocation_schema() -> dict[str, Any]:
    """``services.revocations.parse_revoke``'s rules."""
    return {
        "type": "object",
        "properties": {
            "userId": user_id_schema(),
            "before": {
                "type": "string",
                "format": "date-time",
                "description": "Tokens issued (iat) at or before it are revoked; default now. "
                "A token without iat counts as issued at 0.",
            },
            "apiKey": {"type": "string", "description": "The webhook key, if not in X-API-Key."},
        },
        "required": ["userId"],
        "additionalProperties": False,
    }


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


def errors(*codes: ErrorCode) -> dict[str, Any]:
    """Error responses, one per HTTP status, each in the contract's error shape."""
    found: dict[str, Any] = {}
    for code in codes:
        status = str(code.status)
        entry = found.setdefault(status, json_response(code.value, ref("Error")))
        if code is ErrorCode.RATE_LIMITED:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
        if code is ErrorCode.METHOD_NOT_ALLOWED:
            entry["headers"] = {"Allow": {"schema": {"type": "string"}}}
    return found


COMMON = (ErrorCode.METHOD_NOT_ALLOWED, ErrorCode.INTERNAL_ERROR, ErrorCode.SERVICE_UNAVAILABLE)
BODY = (ErrorCode.INVALID_JSON, ErrorCode.PAYLOAD_TOO_LARGE, ErrorCode.UNSUPPORTED_MEDIA_TYPE)


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for this app's routes and configuration."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "notify-server",
            "version": VERSION,
            "description": "Real-time notifications: HTTP side. The Socket.IO events are in "
            "docs/EVENTS.md.",
        },
        "components": {
            "schemas": {
                "Notification": notification_schema(),
                "Error": error_schema(),
                "NewNotification": new_notification_schema({"recipientId": user_id_schema()}),
                "NewBatch": new_notification_schema(
                    {
                        "recipientIds": {
                            "type": "array",
                            "items": user_id_schema(),
                            "minItems": 1,
                            "maxItems": validation.MAX_RECIPIENTS,
                        }
                    }
                ),
                "Page": page_schema(),
                "ReadRequest": read_request_schema(),
                "Revocation": revocation_schema(),
            },
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "metricsToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "METRICS_TOKEN, when it is set.",
                },
            },
        },
        "paths": {
            "/webhook/notify": {
                "post": {
                    "summary": "Store and deliver a notification (server to server).",
                    "security": [{"apiKey": []}],
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "A repeat within 24 hours returns the first answer.",
                            "schema": {
                                "type": "string",
                                "pattern": f"^{validation.IDEMPOTENCY_KEY.pattern}$",
                            },
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            JSON: {"schema": {"oneOf": [ref("NewNotification"), ref("NewBatch")]}}
                        },
                    },
                    "responses": {
                        "201": json_response(
                            "Stored",
                            {
                                "oneOf": [
                                    success_schema({"notification": ref("Notification")}),
                                    success_schema(
                                        {
                                            "notifications": {
                                                "type": "array",
                                                "items": ref("Notification"),
                                            }
                                        }
                                    ),
                                ]
                            },
                        ),
                        **errors(
                            ErrorCode.VALIDATION_ERROR,
                            ErrorCode.UNAUTHORIZED,
                            ErrorCode.CONFLICT,
                            ErrorCode.RATE_LIMITED,
                            *BODY,
                            *COMMON,
                        ),
                    },
                }
            },
            "/webhook/revoke": {
                "post": {
                    "summary": "Revoke a user's tokens issued at or before a time; end their "
                    "sockets opened with one, on every process.",
                    "security": [{"apiKey": []}],
                    "requestBody": {
                        "required": True,
                        "content": {JSON: {"schema": ref("Revocation")}},
                    },
                    "responses": {
                        "200": json_response(
                            "Stored; the sockets ended cluster-wide (as far as known in 2 s)",
                            success_schema({"disconnected": {"type": "integer", "minimum": 0}}),
                        ),
                        **errors(
                            ErrorCode.VALIDATION_ERROR,
                            ErrorCode.UNAUTHORIZED,
                            ErrorCode.RATE_LIMITED,
                            *BODY,
                            *COMMON,
                        ),
                    },
                }
            },
            "/api/notifications": {
                "get": {
                    "summary": "A page of the caller's notifications, newest first "
                    "(oldest first with after).",
                    "security": [{"bearer": []}],
                    "parameters": [
                        query_parameter(
                            "limit",
                            {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": inbox.MAX_PAGE_SIZE,
                                "default": inbox.DEFAULT_PAGE_SIZE,
                            },
                        ),
                        query_parameter(
                            "before",
                            {"type": "integer", "minimum": 1, "maximum": inbox.MAX_ID},
                        ),
                        query_parameter(
                            "after",
                            {"type": "integer", "minimum": 0, "maximum": inbox.MAX_ID},
                            "Catch-up: ids greater than this one, oldest first (after a "
                            "truncated replay_complete); with before too, the ids between.",
                        ),
                        query_parameter(
                            "status", {"type": "string", "enum": list(storage.STATUS_FILTERS)}
                        ),
                    ],
                    "responses": {
                        "200": json_response("A page", ref("Page")),
                        **errors(
                            ErrorCode.VALIDATION_ERROR,
                            ErrorCode.UNAUTHORIZED,
                            ErrorCode.RATE_LIMITED,
                            *COMMON,
                        ),
                    },
                }
            },
            "/api/notifications/read": {
                "post": {
                    "summary": "Mark the caller's notifications read; their sockets are told.",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {JSON: {"schema": ref("ReadRequest")}},
                    },
                    "responses": {
                        "200": json_response(
                            "How many became read",
                            success_schema({"updated": {"type": "integer", "minimum": 0}}),
                        ),
                        **errors(
                            ErrorCode.VALIDATION_ERROR,
                            ErrorCode.UNAUTHORIZED,
                            ErrorCode.RATE_LIMITED,
                            *BODY,
                            *COMMON,
                        ),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "This process's metrics in the Prometheus text format.",
                    "security": [{"metricsToken": []}, {}],
                    "responses": {
                        "200": {
                            "description": "Metrics",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **errors(
                            ErrorCode.UNAUTHORIZED,
                            ErrorCode.METHOD_NOT_ALLOWED,
                            ErrorCode.INTERNAL_ERROR,
                        ),
                    },
                }
            },
            "/health": {
                "get": {
                    "summary": "Can this process store and share notifications right now?",
                    "security": [],
                    "responses": {
                        "200": json_response("Every part works", health_schema("ok")),
                        "503": json_response("A part fails", health_schema("error")),
                        **errors(ErrorCode.METHOD_NOT_ALLOWED, ErrorCode.INTERNAL_ERROR),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "security": [],
                    "responses": {"200": json_response("OpenAPI 3.1", {"type": "object"})},
                }
            },
        },
    }


def success_schema(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"success": {"const": True}, **properties},
        "required": ["success", *properties],
        "additionalProperties": False,
    }


def page_schema() -> dict[str, Any]:
    return success_schema(
        {
            "notifications": {"type": "array", "items": ref("Notification")},
            "nextCursor": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
            "unreadCount": {"type": "integer", "minimum": 0},
        }
    )


def query_parameter(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "required": False, "schema": schema}
    return parameter | ({"description": description} if description else {})


def health_schema(status: str) -> dict[str, Any]:
    part = {"type": "string", "enum": ["ok", "error", "disabled"]}
    return {
        "type": "object",
        "properties": {
            "status": {"const": status},
            "database": {"type": "string", "enum": ["ok", "error"]},
            "redis": part,
            "messageQueue": part,
            "version": {"type": "string"},
            "uptimeSeconds": {"type": "number", "minimum": 0},
            "error": {"type": "string"},
        },
        "required": ["status", "database", "redis", "version", "uptimeSeconds"],
    }


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    """Called by API tools and Schemathesis; the document for this configuration."""
    return document()
