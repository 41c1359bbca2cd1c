"""Logs: one line per HTTP request and per socket event outcome, JSON in production.

Each line names what happened and nothing it was given: method, path (never the query string),
status or outcome, duration, a request id, the user id when the request or socket is
authenticated, the client's address. Tokens, API keys, the Authorization header and message
bodies are never part of a line, because no field is ever read from them.

``X-Request-ID``: a caller's id is kept when it is 1-128 safe characters, else a new one (uuid4
hex) is made; either way the response carries it back. Socket events get an id of their own.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO, TypeVar

from flask import Flask, Response
from flask_socketio import ConnectionRefusedError

from app.errors import DATABASE_UNAVAILABLE, ApiError, ErrorCode
from app.registry import services
from app.request_locals import current_g, current_request, environ_key
from app.security.authentication import logged_user
from app.sockets.context import current_event
from app.sockets.sessions import current_user

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_KEY = environ_key(REQUEST_ID_HEADER)
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:;=/+@-]{1,128}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_PATH = 512
#: The LogRecord attribute carrying a request's or an event's fields (``extra=``).
FIELDS = "notify_fields"
WORKER_ACCESS_LOGGER = "geventwebsocket.handler"
#: Loggers to which python-engineio and python-socketio add a plain-text stderr handler of
#: their own (when constructed with ``logger=False``), besides propagating to the root logger.
LIBRARY_LOGGERS = ("engineio.server", "socketio.server")

request_log = logging.getLogger("notify.requests")
event_log = logging.getLogger("notify.socket_events")
Handler = TypeVar("Handler", bound=Callable[..., Any])


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger and message, then the fields of a
    request or event line, and the traceback of a record logged with one."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


class LogHandler(logging.StreamHandler[TextIO]):
    """The handler this module installs on the root logger (stderr), told apart from others'."""


def formatter_for(app_env: str) -> logging.Formatter:
    return JsonFormatter() if app_env == "production" else logging.Formatter(TEXT_FORMAT)


def configure_logging(app: Flask) -> None:
    """Log at LOG_LEVEL on stderr, JSON lines in production and text elsewhere, and log every
    request. Like ``logging.basicConfig``, a logging set up by someone else (a test runner, a
    ``--log-config``) is left alone."""
    formatter = services(app).log_formatter
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if isinstance(handler, LogHandler)]
    if ours or not root.handlers:
        handler = ours[0] if ours else LogHandler()
        handler.setFormatter(formatter)
        if not ours:
            root.addHandler(handler)
        root.setLevel(app.config["LOG_LEVEL"])
    # The gevent-websocket worker writes an access line of its own, query string included
    # (gunicorn's access log is never used by that worker); the request line replaces it.
    logging.getLogger(WORKER_ACCESS_LOGGER).setLevel(logging.WARNING)
    app.before_request(start_request)
    app.after_request(finish_request)


def adopt_library_loggers() -> None:
    """Drop the libraries' own stderr handlers (call after ``socketio.init_app``): what they
    log reaches stderr once, through the root logger, in this profile's format (one JSON
    object per line in production) instead of twice, once as plain multi-line text."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)


def printable(text: str, limit: int = MAX_PATH) -> str:
    """``text`` cut to ``limit`` characters, control characters escaped: a path cannot forge
    a second text log line."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:limit])


def accepted_request_id(given: str | None) -> str:
    """The caller's request id when it is 1-128 safe characters, else a new one."""
    if given and SAFE_REQUEST_ID.fullmatch(given):
        return given
    return new_request_id()


#: Random bytes read ahead for request ids (16 each): one ``getrandom`` call per 256 ids.
_random = bytearray()


def new_request_id() -> str:
    """``uuid.uuid4().hex``: 16 random bytes from ``os.urandom`` with the version 4 and RFC 4122
    variant bits set as ``uuid.UUID`` sets them, without the UUID object, and with the bytes
    read 4 KiB at a time (a forked child drops what its parent read ahead)."""
    if not _random:
        _random.extend(os.urandom(4096))
    value = int.from_bytes(_random[-16:])
    del _random[-16:]
    value = (value & ~(0xC000 << 48)) | (0x8000 << 48)
    value = (value & ~(0xF000 << 64)) | (4 << 76)
    return f"{value:032x}"


os.register_at_fork(after_in_child=_random.clear)


def start_request() -> None:
    flask_g = current_g()
    flask_g.request_started = time.perf_counter()
    flask_g.request_id = accepted_request_id(current_request().environ.get(_REQUEST_ID_KEY))


def finish_request(response: Response) -> Response:
    """Echo the request id and write the request's line (registered first, so it runs last
    and sees the final status and headers)."""
    flask_g = current_g()
    request_id = flask_g.get("request_id") or accepted_request_id(None)
    response.headers[REQUEST_ID_HEADER] = request_id
    level = logging.WARNING if response.status_code >= 500 else logging.INFO
    if not request_log.isEnabledFor(level):
        return response
    request = current_request()
    started = flask_g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
    fields = {
        "type": "http_request",
        "method": printable(request.method, 16),
        "path": printable(request.path),
        "status": response.status_code,
        "duration_ms": duration_ms,
        "request_id": request_id,
        "user_id": logged_user(),
        "remote_addr": printable(request.remote_addr or "", 64) or None,
    }
    request_log.log(
        level,
        "%s %s %s %sms request_id=%s user=%s addr=%s",
        fields["method"],
        fields["path"],
        fields["status"],
        duration_ms,
        request_id,
        fields["user_id"] or "-",
        fields["remote_addr"] or "-",
        extra={FIELDS: fields},
    )
    return response


def socket_user() -> str | None:
    try:
        return current_user()
    except ApiError:
        return None


def outcome_of(error: Exception) -> str:
    """The code a client sees for ``error``: its ack's or its refused handshake's."""
    if isinstance(error, ApiError):
        return error.code.value
    if isinstance(error, ConnectionRefusedError):
        args = error.error_args
        data = args.get("data") if isinstance(args, dict) else None
        if isinstance(data, dict) and isinstance(data.get("code"), str):
            return str(data["code"])
        return str(args.get("message", "refused")) if isinstance(args, dict) else "refused"
    if isinstance(error, DATABASE_UNAVAILABLE):
        return ErrorCode.SERVICE_UNAVAILABLE.value
    return ErrorCode.INTERNAL_ERROR.value


def logged_event(handler: Handler) -> Handler:
    """Apply under ``@socketio.on`` or ``@server_event``: one line per call of the handler, with
    its outcome (``ok`` or the error code of the ack or refusal); the error itself goes on to
    the caller. Nothing of the line is made when its level is not logged."""

    @functools.wraps(handler)
    def wrapper(*args: Any) -> Any:
        if not event_log.isEnabledFor(logging.WARNING):
            return handler(*args)
        started = time.perf_counter()
        user = socket_user()
        try:
            result = handler(*args)
        except Exception as error:
            log_event(outcome_of(error), user or socket_user(), started)
            raise
        failed = isinstance(result, dict) and result.get("success") is False
        log_event(str(result.get("code")) if failed else "ok", user or socket_user(), started)
        return result

    return wrapper  # type: ignore[return-value]


def log_event(outcome: str, user: str | None, started: float) -> None:
    failed = outcome in (ErrorCode.INTERNAL_ERROR, ErrorCode.SERVICE_UNAVAILABLE)
    level = logging.WARNING if failed else logging.INFO
    if not event_log.isEnabledFor(level):
        return
    event = current_event()
    fields = {
        "type": "socket_event",
        "event": printable(str(event.name if event else None), 64),
        "outcome": outcome,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        "request_id": new_request_id(),
        "user_id": user,
        "sid": event.sid if event else None,
        "remote_addr": printable((event.remote_addr if event else None) or "", 64) or None,
    }
    event_log.log(
        level,
        "%s %s %sms request_id=%s user=%s sid=%s",
        fields["event"],
        outcome,
        fields["duration_ms"],
        fields["request_id"],
        user or "-",
        fields["sid"],
        extra={FIELDS: fields},
    )
