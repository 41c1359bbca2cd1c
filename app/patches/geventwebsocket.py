"""gevent-websocket overrides: a frame's unmasking and UTF-8 check by C builtins.

Every frame a browser or socket.io-client sends is masked, and every text message is checked
for valid UTF-8 before it is decoded. gevent-websocket does both in pure Python, byte by byte:
``Header.mask_payload`` XORs in a ``for`` loop, and without the optional ``wsaccel`` C
extension ``Utf8Validator.validate`` runs Bjoern Hoehrmann's DFA in Python over the payload,
twice per message (each frame, then the whole message) before ``bytes.decode`` checks it a
third time. On a ``send_notification`` that was a tenth of the worker's time (py-spy).

Here the XOR is one operation on two integers, and ``Utf8Validator`` is an incremental C
decoder (``codecs``) answering the same ``(valid, ends on a code point, index, total)`` tuple,
so gevent-websocket's reading code, its close codes (1007 for invalid UTF-8) and what goes on
the wire are unchanged.
"""

from __future__ import annotations

import codecs
from typing import Any

from app.patches.fence import fence

fence(
    "geventwebsocket.websocket.Header.mask_payload",
    "2bf4d7f1b70ed95eb6f51d2d7a426d62b2b8626bf110194c83fe8c64bc650586",
    "replaced by unmask: the same XOR on integers",
)
fence(
    "geventwebsocket.websocket.WebSocket.read_message",
    "4f7e79b76a8e8fcac33b6d434de5e2c92e7870fedb64987eb8edaecbea8bef02",
    "relied on: reset() and validate() of self.utf8validator, [0] and [3] of the answer",
)
fence(
    "geventwebsocket.websocket.WebSocket.handle_close",
    "d9084e8c8efe47c1cb3e41e6eb0a7735a557471e98d4d1bb0613fc1c9599e8ac",
    "relied on: Utf8Validator().validate(payload)[0] for a close reason",
)
fence(
    "geventwebsocket.utf8validator.Utf8Validator.validate",
    "4715854c8f8349bf2cbfed1f67a445c1e288bc0f6a46433025b6dbc918411359",
    "replaced by CUtf8Validator.validate: the same answer from a C decoder",
)

_Decoder = codecs.getincrementaldecoder("utf-8")


def unmask(self: Any, payload: bytes) -> bytearray:
    """``Header.mask_payload``: the payload XOR the 4-byte mask repeated, as a bytearray."""
    length = len(payload)
    if not length:
        return bytearray()
    key = (bytes(self.mask) * (length // 4 + 1))[:length]
    mixed = int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")
    return bytearray(mixed.to_bytes(length, "little"))


class CUtf8Validator:
    """``geventwebsocket.utf8validator.Utf8Validator``, by an incremental C decoder."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._decoder = _Decoder()
        self.i = 0

    def validate(self, ba: bytes | bytearray) -> tuple[bool, bool, int, int]:
        """(valid so far, ends on a code point, bytes consumed, total consumed)."""
        try:
            self._decoder.decode(ba, False)
        except UnicodeDecodeError as error:
            self.i += error.start
            return False, False, error.start, self.i
        self.i += len(ba)
        pending: bytes = self._decoder.getstate()[0]
        return True, not pending, len(ba), self.i


def install() -> None:
    """Call after gevent's monkey patching."""
    from geventwebsocket import websocket

    websocket.Header.mask_payload = unmask
    websocket.Header.unmask_payload = unmask
    websocket.Utf8Validator = CUtf8Validator  # the name read_message and handle_close use
