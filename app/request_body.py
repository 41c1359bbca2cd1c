"""Reading a JSON request body into the contract's 400/413/415 errors (API views, the demo page
and the API-key check all read it here)."""

from __future__ import annotations

import json
import math

from werkzeug.exceptions import HTTPException

from app.errors import ApiError, ErrorCode
from app.request_locals import current_g, current_request


def request_body() -> object:
    """The parsed JSON body (``read_json_body``), read once per request and shared by the API-key
    check (``security.authentication``) and the view: a body whose reading failed half-way (over
    MAX_CONTENT_LENGTH without a Content-Length, a client that stalled or left) cannot be read a
    second time, and would then look like invalid JSON instead of its real error."""
    flask_g = current_g()
    read: tuple[object, Exception | None] | None = flask_g.get("notify_body")
    if read is None:
        try:
            read = (read_json_body(), None)
        except (ApiError, HTTPException) as failure:
            read = (None, failure)
        flask_g.notify_body = read
    body, failed = read
    if failed is not None:
        raise failed
    return body


def read_json_body() -> object:
    """The parsed body of a JSON request.

    415 unless the content type is ``application/json`` (or ``+json``); 413 past
    ``MAX_CONTENT_LENGTH`` (Werkzeug raises it while reading); 400 ``invalid_json`` for bytes
    that are not UTF-8 JSON, including nesting too deep to parse, NaN, Infinity and numbers
    beyond a float's range.
    """
    request = current_request()
    if not request.is_json:
        raise ApiError(ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    raw = request.get_data(cache=True)
    if request.content_length is None and len(raw) >= (request.max_content_length or len(raw) + 1):
        # A chunked body is cut at the limit without a word (Werkzeug stops reading there);
        # reading on is what raises its 413.
        request.stream.read(1)
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_not_json, parse_float=_finite)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ApiError(ErrorCode.INVALID_JSON) from error


def _not_json(name: str) -> object:
    """Python's parser takes NaN and Infinity; JSON does not, nor does the database."""
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    """A JSON number too large for a float (``1e400``) would be stored as Infinity."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value
