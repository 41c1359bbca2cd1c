"""Our client events handed straight to their dispatcher (``app.patches.event_dispatch``): the
acks python-socketio's own dispatch sends, a raw greenlet per event under gevent, and every
other event left to python-socketio."""

from __future__ import annotations

from typing import Any

import gevent
import pytest
import socketio
from socketio import packet

from app.patches import event_dispatch

pytestmark = pytest.mark.unit

VALUES = [
    {"success": True, "notification": {"id": 2**70, "message": 'héllo "wörld" \u2028', "x": None}},
    {"success": False, "code": "validation_error", "details": {"a": [1, 2.5, True]}},
    None,
    ("", 400),
    ["a", {"b": 1}],
    "text",
    5,
    [b"\x00\x01", "not a dict: walked for bytes as upstream does (a binary ack)"],
]


def server_with(value: Any, mode: str = "threading") -> tuple[socketio.Server, list[Any], str]:
    """A bare python-socketio server with one connected client and a marked handler ``probe``
    answering ``value``; ``_send_packet`` records each packet's encoding."""
    server = socketio.Server(async_mode=mode)
    sent: list[Any] = []
    server._send_packet = lambda eio_sid, pkt: sent.append(pkt.encode())  # type: ignore[method-assign]

    def probe(sid: str, *args: Any) -> Any:
        return value

    setattr(probe, event_dispatch.MARK, True)
    server.on("probe", probe)
    server.manager.connect("e1", "/")
    return server, sent, "e1"


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_the_ack_is_the_one_python_socketio_sends(value: Any) -> None:
    upstream, expected, eio_sid = server_with(value)
    upstream.async_handlers = False
    upstream._handle_event(eio_sid, "/", 7, ["probe", "x"])
    ours, sent, eio_sid = server_with(value)
    ours.async_handlers = False
    event_dispatch.install(ours)
    ours._handle_event(eio_sid, "/", 7, ["probe", "x"])
    assert sent == expected and sent
    ours._handle_event(eio_sid, None, None, ["probe"])  # no ack asked: none sent
    assert sent == expected


def test_under_gevent_each_event_runs_in_a_raw_greenlet_not_a_background_task() -> None:
    server, sent, eio_sid = server_with({"success": True}, mode="gevent")
    event_dispatch.install(server)

    def no_task(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("python-socketio's background task was used")

    server.start_background_task = no_task  # type: ignore[method-assign]
    for n in range(3):
        server._handle_event(eio_sid, "/", n, ["probe"])
    assert sent == []  # not run inline
    gevent.sleep(0)
    assert sent == [f"3{n}" + '[{"success":true}]' for n in range(3)]


def test_other_handlers_events_and_namespaces_go_to_python_socketio() -> None:
    server, sent, eio_sid = server_with({"success": True})
    server.async_handlers = False
    event_dispatch.install(server)
    seen: list[Any] = []
    server.on("plain", lambda sid, *args: seen.append(args) or "plain ack")
    triggered: list[str] = []
    trigger = server._trigger_event

    def counted(event: str, *args: Any) -> Any:
        triggered.append(event)
        return trigger(event, *args)

    server._trigger_event = counted  # type: ignore[method-assign]
    server._handle_event(eio_sid, "/", 1, ["plain", 1])
    server._handle_event(eio_sid, "/", 2, ["unknown"])
    server._handle_event(eio_sid, "/", 3, ["probe"])
    assert triggered == ["plain", "unknown"]  # probe was dispatched directly
    assert seen == [(1,)]
    assert sent == ['31["plain ack"]', '33[{"success":true}]']


def test_an_event_of_a_socket_not_connected_to_the_namespace_is_dropped() -> None:
    server, sent, _eio_sid = server_with({"success": True})
    server.async_handlers = False
    event_dispatch.install(server)
    server.manager.connect("e2", "/")
    server.manager.disconnect(server.manager.sid_from_eio_sid("e2", "/"), "/")
    server._handle_event("e2", "/", 1, ["probe"])
    assert sent == []


def test_bytes_in_a_dict_ack_are_refused_not_sent_as_text() -> None:
    """A dict ack is not walked for bytes (our handlers answer JSON objects): bytes in one fail
    loudly in ``json.dumps`` instead of reaching the client as something else."""
    server, sent, eio_sid = server_with({"bytes": b"\x00"})
    server.async_handlers = False
    event_dispatch.install(server)
    with pytest.raises(TypeError):
        server._handle_event(eio_sid, "/", 1, ["probe"])
    assert sent == []
    assert packet.BINARY_ACK == 6
