"""``GET /openapi.json``: the OpenAPI 3.1 document, built from the code's own rules and types.

Nothing here is a hand-kept copy of a rule: the input schemas are generated from the payload
models (``app.payloads``) for the running configuration, the answers' shapes from the
``TypedDict``s the code returns (``NotificationDict``, ``ErrorBody``), error codes from
``ErrorCode``.
"""

from __future__ import annotations

import types
from typing import Any, NotRequired, Union, get_args, get_origin, get_type_hints

from flask import Blueprint, current_app

from app.errors import ErrorBody, ErrorCode
from app.models import NotificationDict, Status
from app.payloads import models
from app.payloads.base import Payload
from app.payloads.rules import IDEMPOTENCY_KEY
from app.payloads.schema import model_schema
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


def payload_schema(model: type[Payload], *, api_key: bool = False) -> dict[str, Any]:
    """A payload model's schema for this configuration; ``api_key``: the webhook's body may
    carry its key (``apiKey``) instead of the X-API-Key header."""
    schema = model_schema(model, current_app.config)
    if api_key:
        schema["properties"]["apiKey"] = {
            "type": "string",
            "description": "The webhook key, if not in X-API-Key.",
        }
    return schema


def query_parameters(model: type[Payload]) -> list[dict[str, Any]]:
    """A query model's fields as OpenAPI query parameters, each optional."""
    properties = model_schema(model, current_app.config)["properties"]
    parameters = []
    for name, schema in properties.items():
        parameter = {"name": name, "in": "query", "required": False, "schema": schema}
        if "description" in schema:
            parameter["description"] = schema.pop("description")
        parameters.append(parameter)
    return parameters


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": schema}}}


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
#: What an authenticated route with checked input can answer besides the common errors.
CHECKED = (ErrorCode.VALIDATION_ERROR, ErrorCode.UNAUTHORIZED, ErrorCode.RATE_LIMITED)
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
                "NewNotification": payload_schema(models.NewNotification, api_key=True),
                "NewBatch": payload_schema(models.NewBatch, api_key=True),
                "Page": page_schema(),
                "ReadRequest": payload_schema(models.ReadRequest),
                "Revocation": payload_schema(models.Revocation, api_key=True),
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
                                "pattern": f"^{IDEMPOTENCY_KEY.pattern}$",
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
                "post": counted_post(
                    "Revoke a user's tokens issued at or before a time; end their "
                    "sockets opened with one, on every process.",
                    "apiKey",
                    "Revocation",
                    "Stored; the sockets ended cluster-wide (as far as known in 2 s)",
                    "disconnected",
                )
            },
            "/api/notifications": {
                "get": {
                    "summary": "A page of the caller's notifications, newest first "
                    "(oldest first with after).",
                    "security": [{"bearer": []}],
                    "parameters": query_parameters(models.PageQuery),
                    "responses": {
                        "200": json_response("A page", ref("Page")),
                        **errors(*CHECKED, *COMMON),
                    },
                }
            },
            "/api/notifications/read": {
                "post": counted_post(
                    "Mark the caller's notifications read; their sockets are told.",
                    "bearer",
                    "ReadRequest",
                    "How many became read",
                    "updated",
                )
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


def counted_post(
    summary: str, security: str, body: str, description: str, count: str
) -> dict[str, Any]:
    """A POST with a checked JSON body whose success answer is one count."""
    return {
        "summary": summary,
        "security": [{security: []}],
        "requestBody": json_body(ref(body)),
        "responses": {
            "200": json_response(
                description, success_schema({count: {"type": "integer", "minimum": 0}})
            ),
            **errors(*CHECKED, *BODY, *COMMON),
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
