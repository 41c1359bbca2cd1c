"""An answer's headers copied for the WSGI server in one pass (``NotifyResponse``,
``copy_headers``): the same headers, and the same errors, as werkzeug's
``Response.get_wsgi_headers``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Response
from werkzeug.datastructures import Headers
from werkzeug.test import create_environ

from app.patches.flask import NotifyFlask, NotifyResponse

pytestmark = pytest.mark.unit

ENVIRON = create_environ("/webhook/notify", "http://example.com:8080/base/")


def plain(response: Response) -> None:
    response.headers["X-Request-ID"] = "abc"
    response.headers.add("Vary", "Origin")
    response.headers.add("Vary", "Cookie")


def relative_location(response: Response) -> None:
    response.headers["Location"] = "../next?q=caf\u00e9"


def absolute_location(response: Response) -> None:
    response.headers["Location"] = "https://other.example/x y"
    response.autocorrect_location_header = False


def content_location(response: Response) -> None:
    response.headers["Content-Location"] = "/caf\u00e9"


def no_content(response: Response) -> None:
    response.status_code = 204


def not_modified(response: Response) -> None:
    response.status_code = 304
    response.headers["Last-Modified"] = "Wed, 21 Oct 2015 07:28:00 GMT"
    response.headers["Content-Encoding"] = "gzip"


def informational(response: Response) -> None:
    response.status_code = 102


def no_length(response: Response) -> None:
    del response.headers["Content-Length"]


def streamed(response: Response) -> None:
    del response.headers["Content-Length"]
    response.response = iter([b"a", b"b"])


def a_number_in_the_list(response: Response) -> None:
    response.headers._list.append(("X-Count", 3))  # type: ignore[arg-type]


class Text(str):
    __slots__ = ()


def a_str_subclass(response: Response) -> None:
    response.headers._list.append(("X-Text", Text("value")))


def a_newline_in_the_list(response: Response) -> None:
    response.headers._list.append(("X-Bad", "a\r\nInjected: yes"))


SHAPES: dict[str, Callable[[Response], None]] = {
    "plain": plain,
    "relative location": relative_location,
    "absolute location": absolute_location,
    "content location": content_location,
    "204": no_content,
    "304": not_modified,
    "102": informational,
    "no length": no_length,
    "streamed": streamed,
    "a number": a_number_in_the_list,
    "a str subclass": a_str_subclass,
    "a newline": a_newline_in_the_list,
}


def outcome(response_class: type[Response], shape: str) -> Any:
    response = response_class('{"success":true}', status=200, mimetype="application/json")
    SHAPES[shape](response)
    try:
        headers = Response.get_wsgi_headers(response, ENVIRON)  # werkzeug's, unless overridden
        if response_class is NotifyResponse:
            headers = response.get_wsgi_headers(ENVIRON)
    except Exception as error:  # noqa: BLE001 - the error is what is compared
        return (type(error), str(error))
    assert type(headers) is Headers
    return [(name, value, type(value)) for name, value in headers.to_wsgi_list()], [
        type(pair) for pair in headers._list
    ]


@pytest.mark.parametrize("shape", SHAPES)
def test_the_headers_are_werkzeugs_own(shape: str) -> None:
    assert outcome(NotifyResponse, shape) == outcome(Response, shape)


def test_the_app_copies_an_answers_headers_without_adding_them_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = NotifyFlask(__name__)
    response = app.response_class('{"success":true}', mimetype="application/json")
    plain(response)
    added: list[str] = []
    upstream_add = Headers.add

    def counting_add(self: Headers, key: str, value: Any, /, **kwargs: Any) -> None:
        added.append(key)
        upstream_add(self, key, value, **kwargs)

    monkeypatch.setattr(Headers, "add", counting_add)
    headers = response.get_wsgi_headers(ENVIRON)
    assert headers.getlist("Vary") == ["Origin", "Cookie"]
    assert added == []  # werkzeug's: one add per header (five)
