"""Frames written by the caller when the connection takes them whole: the bytes
gevent-websocket's own send writes, in order, with no greenlet; a slow client's go through the
writer greenlet, the rest of a part-sent frame first, and the caller never waits."""

from __future__ import annotations

import time
from typing import Any

import gevent
import gevent.socket
import pytest
from engineio import packet
from geventwebsocket.websocket import Stream, WebSocket

from app.patches.engineio import DirectFrameWriter, WriterQueue, websocket_frame
from tests.unit.opened import OPENED, close_what_was_opened  # noqa: F401 - the fixture

pytestmark = pytest.mark.unit


class Handler:
    def __init__(self, connection: Any) -> None:
        self.socket = connection
        self.rfile = connection.makefile("rb")
        OPENED.append(self.rfile)


class EngineIOWebSocket:
    """engineio's WebSocketWSGI as the writer sees it: ``_sock`` is gevent-websocket's."""

    def __init__(self, connection: Any) -> None:
        handler = Handler(connection)
        self._sock = WebSocket({}, Stream(handler), handler)

    def send(self, message: Any) -> None:
        self._sock.send(message)

    def close(self) -> None:
        self._sock.close()


PACKETS = [
    packet.Packet(packet.MESSAGE, data='2["new_notification",{"id":1}]'),
    packet.Packet(packet.MESSAGE, data="héllo \u2028 wörld"),
    packet.Packet(packet.MESSAGE, data=b"\x00\x01binary"),
    packet.Packet(packet.MESSAGE, data="x" * 200),
    packet.Packet(packet.MESSAGE, data="y" * 70_000),
    packet.Packet(packet.PING),
    # The payload lengths where the header's length field changes (the packet's type is 1 more).
    *(packet.Packet(packet.MESSAGE, data="z" * (n - 1)) for n in (125, 126, 65_535, 65_536)),
    packet.Packet(packet.MESSAGE, data=b"b" * 65_536),
]


def read_exactly(peer: Any, size: int) -> bytes:
    chunks = []
    while size:
        chunk = peer.recv(min(size, 1 << 20))
        assert chunk, "the connection closed early"
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def pair(send_buffer: int | None = None) -> tuple[Any, Any]:
    ours, peer = gevent.socket.socketpair()
    OPENED.extend((ours, peer))
    if send_buffer is not None:
        ours.setsockopt(gevent.socket.SOL_SOCKET, gevent.socket.SO_SNDBUF, send_buffer)
        peer.setsockopt(gevent.socket.SOL_SOCKET, gevent.socket.SO_RCVBUF, send_buffer)
    return ours, peer


def connect(connection: Any) -> tuple[WriterQueue, DirectFrameWriter, EngineIOWebSocket]:
    ws = EngineIOWebSocket(connection)
    queue = WriterQueue()
    writer = DirectFrameWriter(queue, ws)
    queue.on_put = writer.wake
    return queue, writer, ws


def test_the_frames_are_gevent_websockets_own() -> None:
    ours, peer = pair()
    upstream = EngineIOWebSocket(ours)
    for pkt in PACKETS:
        upstream.send(pkt.encode())
        expected = websocket_frame(pkt.encode())
        assert read_exactly(peer, len(expected)) == expected


def test_a_connection_with_room_is_written_by_the_caller_in_order() -> None:
    ours, peer = pair()
    queue, writer, _ = connect(ours)
    spawned: list[Any] = []
    original = gevent.spawn_raw
    gevent.spawn_raw = lambda *a: spawned.append(a)  # type: ignore[assignment]
    try:
        for pkt in PACKETS[:4]:
            queue.put(pkt)
    finally:
        gevent.spawn_raw = original
    assert spawned == [] and not writer.running and queue.qsize() == 0
    expected = b"".join(websocket_frame(p.encode()) for p in PACKETS[:4])
    assert read_exactly(peer, len(expected)) == expected


def test_a_slow_client_gets_whole_frames_in_order_and_the_caller_never_waits() -> None:
    ours, peer = pair(send_buffer=4096)
    queue, writer, _ = connect(ours)
    packets = [packet.Packet(packet.MESSAGE, data=f"{n:04d}" + "z" * 3000) for n in range(60)]
    started = time.monotonic()
    for pkt in packets:
        queue.put(pkt)  # nobody reads yet: the kernel's buffers fill after a few
    assert time.monotonic() - started < 0.5
    assert writer.running  # the rest went to the greenlet
    expected = b"".join(websocket_frame(p.encode()) for p in packets)
    received = gevent.spawn(read_exactly, peer, len(expected))
    assert received.get(timeout=10) == expected
    gevent.sleep(0.01)
    assert not writer.running and queue.qsize() == 0


def test_the_none_still_closes_through_the_greenlet() -> None:
    ours, peer = pair()
    queue, writer, _ = connect(ours)
    queue.put(PACKETS[0])
    queue.put(None)
    writer.wait_done()
    assert writer.done
    first = websocket_frame(PACKETS[0].encode())
    assert read_exactly(peer, len(first)) == first
    assert peer.recv(2)[:1] == b"\x88"  # then the close frame
