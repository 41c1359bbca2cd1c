"""Many emits encoded once per shape: the packets python-socketio's own emit sends, in order."""

from __future__ import annotations

import json
from typing import Any

import pytest
import socketio
from socketio import packet

from app.json_texts import SLOT
from app.patches.socketio import Emit, IndexedManager, event_texts

pytestmark = pytest.mark.unit
NS = "/"
EVENT = "new_notification"


def upstream(event: str, data: Any) -> str:
    text: str = packet.Packet(packet.EVENT, namespace=NS, data=[event, data]).encode()
    return text


def notification(i: int, **fields: Any) -> dict[str, Any]:
    base = {
        "id": 1000 + i,
        "recipientId": f"user-{i}",
        "senderId": None,
        "type": "info",
        "message": 'héllo "wörld" \u2028 </script>',
        "data": {"nested": [1, 2.5, None, True], "ünï": "\x00\x1f"},
        "status": "delivered",
        "createdAt": "2026-12-02T01:00:00.000Z",
        "deliveredAt": "2026-12-02T01:00:00.010Z",
        "readAt": None,
    }
    base.update(fields)
    return base


CASES = {
    "a batch": [notification(i) for i in range(50)],
    "one": [notification(0)],
    "none": [],
    "ids that are strings and ints": [notification(0), notification(1, id="x\u00e9")],
    "a field that differs as a dict": [notification(0), notification(1, data={"other": 1})],
    "a bool that differs": [notification(0), notification(1, readAt=True)],
    "keys in another order": [notification(0), dict(reversed(list(notification(1).items())))],
    "a key missing": [notification(0), {k: v for k, v in notification(1).items() if k != "data"}],
    "the placeholder itself in a message": [
        notification(0, message=SLOT.format(0)),
        notification(1, message=SLOT.format(0)),
    ],
    "the placeholder in a varying field": [
        notification(0, recipientId=SLOT.format(0)),
        notification(1),
    ],
    "not dicts": ["text", ["a", 1], 5],
    "big integers and floats": [notification(0, id=2**70), notification(1, id=-3)],
    "varying strings to escape, and None": [
        notification(0, recipientId='q"uo\\te \u2028 é 🎉 \x00', senderId=None),
        notification(1, recipientId="plain", senderId="s\n"),
        notification(2, recipientId="", senderId=None, id=0),
    ],
    "equal values of another type (1 and 1.0)": [
        notification(0, data=1),
        notification(1, data=1.0),
    ],
}


@pytest.mark.parametrize("name", CASES)
def test_each_text_is_what_python_socketio_encodes(name: str) -> None:
    payloads = CASES[name]
    assert event_texts(json.dumps, EVENT, payloads) == [upstream(EVENT, p) for p in payloads]


@pytest.mark.parametrize("name", CASES)
def test_another_json_module_encodes_the_slots_too(name: str) -> None:
    """A ``dumps`` other than ``json.dumps`` (Flask-SocketIO's ``json=`` option) writes each
    slot's value itself."""
    payloads = CASES[name]

    def dumps(obj: Any, **kwargs: Any) -> str:
        return json.dumps(obj, **kwargs).replace("null", "NULL")

    assert event_texts(dumps, EVENT, payloads) == [
        str(packet.EVENT) + dumps([EVENT, p], separators=(",", ":")) for p in payloads
    ]


def test_a_batch_is_encoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    def dumps(obj: Any, **kwargs: Any) -> str:
        if isinstance(obj, list) and obj[:1] == [EVENT]:  # a packet, not a column compared
            calls.append(obj)
        return json.dumps(obj, **kwargs)

    payloads = [notification(i) for i in range(100)]
    assert event_texts(dumps, EVENT, payloads) == [upstream(EVENT, p) for p in payloads]
    assert len(calls) == 1  # the template; each payload's id and recipient are scalars


def test_bytes_are_refused_as_json_refuses_them() -> None:
    with pytest.raises(TypeError):
        event_texts(json.dumps, EVENT, [notification(0, data=b"x"), notification(1, data=b"y")])


class Recorder(socketio.Server):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, Any]] = []

    def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        self.sent.append((eio_sid, eio_pkt.encode()))


def manager_with(rooms: dict[str, list[str]]) -> tuple[IndexedManager, Recorder]:
    server = Recorder()
    manager = IndexedManager()
    manager.set_server(server)
    for sid, joined in rooms.items():
        manager.basic_enter_room(sid, NS, None, eio_sid=f"eio-{sid}")
        for room in joined:
            manager.basic_enter_room(sid, NS, room)
    return manager, server


ROOMS = {"a": ["user:1", "user:2"], "b": ["user:1"], "c": ["user:3"]}
EMITS = [
    Emit(notification(1), "user:1"),
    Emit(notification(2), "user:2"),
    Emit(notification(3), "user:1", skip_sid="b"),
    Emit(notification(4), "user:nobody"),
    Emit(notification(5), "user:3"),
]
OTHER_EMITS = [
    Emit(None, "user:1"),
    Emit(b"\x00binary", "user:1"),
    Emit(("two", "arguments"), "user:3"),
]


@pytest.mark.parametrize("emits", [EMITS, OTHER_EMITS], ids=["json", "other"])
def test_emit_each_sends_what_emit_sends(emits: list[Emit]) -> None:
    ours, ours_server = manager_with(ROOMS)
    theirs, their_server = manager_with(ROOMS)
    ours.emit_each(EVENT, emits)
    for e in emits:
        socketio.Manager.emit(theirs, EVENT, e.data, NS, room=e.room, skip_sid=e.skip_sid)
    assert ours_server.sent == their_server.sent
    assert ours_server.sent  # something was sent


def test_emit_each_to_an_unknown_namespace_sends_nothing() -> None:
    ours, server = manager_with(ROOMS)
    ours.emit_each(EVENT, EMITS, namespace="/other")
    assert server.sent == []
