"""Reading a JSON request body into the contract's 400/413/415 errors."""

from __future__ import annotations

import json

from flask import request

from app.errors import ApiError, ErrorCode


def read_json_body() -> object:
    """The parsed body of a JSON request.

    415 unless the content type is ``application/json`` (or ``+json``); 413 past
    ``MAX_CONTENT_LENGTH`` (Werkzeug raises it while reading); 400 ``invalid_json`` for bytes
    that are not UTF-8 JSON, including nesting too deep to parse.
    """
    if not request.is_json:
        raise ApiError(ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ApiError(ErrorCode.INVALID_JSON) from error
