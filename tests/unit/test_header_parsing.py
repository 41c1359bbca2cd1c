"""A request's headers split without the email parser: the same message pywsgi's own
``headers_factory`` makes, for plain blocks and for every odd one it hands on."""

from __future__ import annotations

import io
from typing import Any

import gevent.pywsgi
import pytest

from app.patches.gevent import TimeoutHandler, parse_headers

pytestmark = pytest.mark.unit

WEBHOOK = (
    b"Host: 127.0.0.1:3310\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n"
    b"X-API-Key: k\r\nContent-Length: 64\r\nUser-Agent: undici\r\nAccept: */*\r\n\r\n"
)
BLOCKS = {
    "a webhook": WEBHOOK,
    "bare LF": WEBHOOK.replace(b"\r\n", b"\n"),
    "no headers": b"\r\n",
    "no end": b"Host: x\r\n",
    "empty value": b"X-Empty:\r\nX-Blank:   \r\n\r\n",
    "blanks around": b"X-A: \t value with  spaces \t\r\n\r\n",
    "a repeated name": b"Cookie: a=1\r\nCookie: b=2\r\n\r\n",
    "colons in the value": b"X-Url: http://a:b@c:1/d\r\n\r\n",
    "latin-1 bytes": b"X-Name: caf\xe9 \xff\r\n\r\n",
    "a folded line": b"X-Long: one\r\n two\r\n\tthree\r\nHost: x\r\n\r\n",
    "a bare CR": b"X-A: one\rX-B: two\r\n\r\n",
    "no colon": b"Host: x\r\nnot a header\r\nX-After: y\r\n\r\n",
    "an empty name": b": value\r\nHost: x\r\n\r\n",
    "a space before the colon": b"Host : x\r\n\r\n",
    "a From line": b"From nobody\r\nHost: x\r\n\r\n",
    "control characters": b"X-A: a\x00b\x0bc\x0cd\x1ce\x85f\r\n\r\n",
    "underscores": b"X_Forwarded_For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n\r\n",
    "a body after": b"Host: x\r\n\r\nbody bytes",
}


def state(message: Any) -> dict[str, Any]:
    fields = dict(vars(message))
    fields["defects"] = [type(d) for d in fields.get("defects", [])]
    return fields


@pytest.mark.parametrize("name", BLOCKS)
def test_the_message_is_pywsgis_own(name: str) -> None:
    ours = parse_headers(io.BytesIO(BLOCKS[name]))
    theirs = gevent.pywsgi.headers_factory(io.BytesIO(BLOCKS[name]))
    assert type(ours) is type(theirs)
    assert state(ours) == state(theirs)
    assert list(ours.headers) == list(theirs.headers)
    assert ours.get("host") == theirs.get("host")


def test_a_line_too_long_and_too_many_headers_are_refused_as_before() -> None:
    long_line = b"X-A: " + b"a" * 70_000 + b"\r\n\r\n"
    assert parse_headers(io.BytesIO(long_line)).status == "Line too long"
    assert gevent.pywsgi.headers_factory(io.BytesIO(long_line)).status == "Line too long"
    many = b"".join(b"X-%d: v\r\n" % n for n in range(120)) + b"\r\n"
    with pytest.raises(Exception) as ours:
        parse_headers(io.BytesIO(many))
    with pytest.raises(Exception) as theirs:
        gevent.pywsgi.headers_factory(io.BytesIO(many))
    assert type(ours.value) is type(theirs.value)


def test_the_worker_parses_with_it() -> None:
    assert TimeoutHandler.MessageClass is not gevent.pywsgi.WSGIHandler.MessageClass
