"""The C unmasking and UTF-8 check answer what gevent-websocket's pure Python answers."""

from __future__ import annotations

import os

import pytest
from geventwebsocket.utf8validator import Utf8Validator
from geventwebsocket.websocket import Header

from app.patches.geventwebsocket import CUtf8Validator, unmask

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 125, 126, 1000, 65536])
def test_unmask_is_gevent_websockets_xor(length: int) -> None:
    header = Header(length=length)
    header.mask = os.urandom(4)
    payload = os.urandom(length)
    assert unmask(header, payload) == Header.mask_payload(header, payload)


CHUNKS = [
    [b"plain ascii"],
    ["héllo wörld ✓ 🎉".encode()],
    ["🎉".encode()[:2], "🎉".encode()[2:]],  # a code point split across frames
    [b"ok", b"\xff"],  # invalid byte
    [b"\xed\xa0\x80"],  # a surrogate: not UTF-8
    [b"\xc3"],  # an unfinished sequence at the end
    [b"\xf4\x90\x80\x80"],  # above U+10FFFF
    [b""],
]


@pytest.mark.parametrize("chunks", CHUNKS)
def test_c_validator_answers_like_the_dfa(chunks: list[bytes]) -> None:
    ours, theirs = CUtf8Validator(), Utf8Validator()
    for chunk in chunks:
        mine, upstream = ours.validate(chunk), theirs.validate(chunk)
        assert mine[:2] == upstream[:2]
        if upstream[0]:
            assert mine == upstream
        else:
            break
