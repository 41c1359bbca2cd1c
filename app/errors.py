"""The contract's error shape, shared by HTTP responses and Socket.IO acks."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

import sqlalchemy.exc as sa_exc
from flask import Flask, Response, g, jsonify
from werkzeug.exceptions import HTTPException

from app.extensions import db

log = logging.getLogger(__name__)


class ErrorCode(StrEnum):
    INVALID_JSON = "invalid_json"
    VALIDATION_ERROR = "validation_error"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RATE_LIMITED = "rate_limited"
    INTERNAL_ERROR = "internal_error"
    SERVICE_UNAVAILABLE = "service_unavailable"

    @property
    def status(self) -> int:
        return _STATUS[self]


_STATUS = {
    ErrorCode.INVALID_JSON: 400,
    ErrorCode.VALIDATION_ERROR: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
}
_BY_STATUS = {status: code for code, status in reversed(_STATUS.items())}
_DEFAULT_MESSAGES = {
    ErrorCode.INVALID_JSON: "The request body is not valid JSON.",
    ErrorCode.VALIDATION_ERROR: "The request is not valid.",
    ErrorCode.UNAUTHORIZED: "Authentication is required.",
    ErrorCode.FORBIDDEN: "You may not do this.",
    ErrorCode.NOT_FOUND: "There is nothing here.",
    ErrorCode.METHOD_NOT_ALLOWED: "This method is not allowed here.",
    ErrorCode.CONFLICT: "The request conflicts with an earlier one.",
    ErrorCode.PAYLOAD_TOO_LARGE: "The request body is too large.",
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: "The request body must be application/json.",
    ErrorCode.RATE_LIMITED: "Too many requests; try again later.",
    ErrorCode.INTERNAL_ERROR: "Something went wrong on our side.",
    ErrorCode.SERVICE_UNAVAILABLE: "The service is temporarily unavailable; try again.",
}


#: Errors meaning "the database is not reachable right now", as opposed to a bug.
DATABASE_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


class ErrorBody(TypedDict):
    success: bool
    error: str
    code: str
    details: NotRequired[dict[str, str]]
    retryAfter: NotRequired[int]


class ApiError(Exception):
    """An error the client should see, in the contract's shape."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(
        self,
        code: ErrorCode | None = None,
        message: str | None = None,
        details: dict[str, str] | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.code = code or self.code
        self.message = message or _DEFAULT_MESSAGES[self.code]
        self.details = details
        self.retry_after = retry_after
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return self.code.status

    def body(self) -> ErrorBody:
        return error_body(self.code, self.message, self.details, self.retry_after)


class ValidationError(ApiError):
    code = ErrorCode.VALIDATION_ERROR

    def __init__(self, details: dict[str, str], message: str | None = None) -> None:
        super().__init__(message=message or "The notification is not valid.", details=details)


class Unauthorized(ApiError):
    """``challenge``: the ``WWW-Authenticate`` header of the 401 (``security.authentication``)."""

    code = ErrorCode.UNAUTHORIZED

    def __init__(
        self,
        message: str | None = None,
        details: dict[str, str] | None = None,
        challenge: str | None = None,
    ) -> None:
        super().__init__(message=message, details=details)
        self.challenge = challenge


class ServiceUnavailable(ApiError):
    code = ErrorCode.SERVICE_UNAVAILABLE


def error_body(
    code: ErrorCode,
    message: str | None = None,
    details: dict[str, str] | None = None,
    retry_after: int | None = None,
) -> ErrorBody:
    body: ErrorBody = {
        "success": False,
        "error": message or _DEFAULT_MESSAGES[code],
        "code": code.value,
    }
    if details:
        body["details"] = details
    if retry_after is not None:
        body["retryAfter"] = retry_after
    return body


def _json_response(body: ErrorBody, status: int, headers: Any = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    if headers:
        for name, value in headers:
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
    return response


def handle_api_error(error: ApiError) -> Response:
    response = _json_response(error.body(), error.status)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, Unauthorized) and error.challenge:
        response.headers["WWW-Authenticate"] = error.challenge
    return response


def handle_http_exception(error: HTTPException) -> Response:
    """Werkzeug's and Flask-Limiter's errors in the contract's shape, keeping their headers."""
    status = error.code or 500
    code = _BY_STATUS.get(status, ErrorCode.INTERNAL_ERROR if status >= 500 else None)
    if code is None:
        code = ErrorCode.VALIDATION_ERROR
    original = error.get_response()
    retry_after = None
    if status == 429:
        g.notify_rate_limited = True  # app.api.limits writes the RateLimit-* headers now
        retry_after = int(original.headers.get("Retry-After", "1") or 1)
    message = None if code is not ErrorCode.VALIDATION_ERROR else "The request is not valid."
    return _json_response(
        error_body(code, message, retry_after=retry_after), status, original.headers.items()
    )


def unexpected_error_body(error: Exception) -> ErrorBody:
    """The body for an exception that is not an ApiError, for HTTP and acks alike.

    The session is rolled back so nothing half-written survives. A database that cannot be
    reached is ``service_unavailable`` (retry later), anything else a logged ``internal_error``.
    Neither the message nor the traceback reaches the client.
    """
    try:
        db.session.rollback()
    except Exception:  # a dead connection may refuse even the rollback
        log.warning("rollback failed after an error", exc_info=True)
    if isinstance(error, DATABASE_UNAVAILABLE):
        log.error("database unavailable: %s", type(error).__name__)
        return error_body(ErrorCode.SERVICE_UNAVAILABLE)
    log.error("unhandled error", exc_info=error)
    return error_body(ErrorCode.INTERNAL_ERROR)


def handle_unexpected(error: Exception) -> Response:
    body = unexpected_error_body(error)
    return _json_response(body, ErrorCode(body["code"]).status)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
