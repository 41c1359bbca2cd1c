"""Frames written by the caller when the connection takes them whole: the bytes
gevent-websocket's own send writes, in order, with no greenlet; a slow client's go through the
writer greenlet, the rest of a part-sent frame first, and the caller never waits."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import gevent
import gevent.socket
import pytest
import socketio
from engineio import packet
from engineio import socket as engineio_socket
from geventwebsocket.websocket import Stream, WebSocket

from app.patches.engineio import DirectFrameWriter, WriterQueue, websocket_frame
from app.patches.socketio import Emit, IndexedManager, event_text
from tests.unit.opened import OPENED, close_what_was_opened  # noqa: F401 - the fixture
from tests.unit.test_event_texts import notification

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


# ---- a push to many sockets: each frame written by the pusher (engineio.send_whole) ---------


class Pushes:
    """A Socket.IO server (our indexed manager) whose Engine.IO sessions are websockets over
    local socket pairs, each with its DirectFrameWriter, as ``websocket_session`` leaves them."""

    def __init__(self) -> None:
        self.server = socketio.Server(async_mode="gevent", client_manager=IndexedManager())
        self.server.manager.initialize()

    def connect(self, user: str, send_buffer: int | None = None) -> tuple[Any, Any]:
        ours, peer = pair(send_buffer)
        eio_sid = f"eio-{user}"
        session = engineio_socket.Socket(self.server.eio, eio_sid)
        session.queue = WriterQueue()
        session.connected = session.upgraded = True
        writer = DirectFrameWriter(session.queue, EngineIOWebSocket(ours))
        session.queue.on_put = writer.wake
        self.server.eio.sockets[eio_sid] = session
        sid = self.server.manager.connect(eio_sid, "/")
        self.server.manager.enter_room(sid, "/", f"user:{user}")
        return session, peer

    def push(self, *payloads: tuple[str, dict[str, Any]]) -> list[bytes]:
        """emit_each of the payloads; the frames each should get, in order."""
        emits = [Emit(data, f"user:{user}") for user, data in payloads]
        self.server.manager.emit_each("new_notification", emits)
        return [frame_of(data) for _, data in payloads]


def frame_of(data: dict[str, Any]) -> bytes:
    text = event_text(json.dumps, "new_notification", data)
    return websocket_frame(packet.Packet(packet.MESSAGE, text).encode())


@pytest.fixture
def puts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every packet put in a session's queue."""
    seen: list[Any] = []
    put = WriterQueue.put

    def counted(self: WriterQueue, item: Any, *args: Any) -> None:
        seen.append(item)
        put(self, item, *args)

    monkeypatch.setattr(WriterQueue, "put", counted)
    return seen


def test_a_push_to_idle_websockets_writes_each_frame_without_the_queue(puts: list[Any]) -> None:
    pushes = Pushes()
    peers = {user: pushes.connect(user)[1] for user in ("a", "b", "c")}
    frames = pushes.push(*((user, notification(i)) for i, user in enumerate("abca")))
    assert puts == []  # before send_whole: one put (and a wake, a get) per packet
    assert read_exactly(peers["a"], len(frames[0] + frames[3])) == frames[0] + frames[3]
    assert read_exactly(peers["b"], len(frames[1])) == frames[1]
    assert read_exactly(peers["c"], len(frames[2])) == frames[2]


def test_a_frame_the_kernel_takes_in_part_is_finished_by_the_greenlet_in_order(
    puts: list[Any],
) -> None:
    pushes = Pushes()
    _, peer = pushes.connect("slow", send_buffer=4096)
    big = [("slow", notification(i, message="m" * 20_000)) for i in range(8)]
    started = time.monotonic()
    frames = pushes.push(*big)  # the first part-sent, the rest queued behind it
    assert time.monotonic() - started < 0.5
    received = gevent.spawn(read_exactly, peer, sum(map(len, frames)))
    assert received.get(timeout=10) == b"".join(frames)
    assert 0 < len(puts) < len(big)


def test_a_polling_session_an_upgrade_and_a_queue_take_upstreams_path(puts: list[Any]) -> None:
    pushes = Pushes()
    polling, _ = pushes.connect("polling")
    upgrading, _ = pushes.connect("upgrading")
    polling.upgraded, upgrading.upgrading = False, True
    polling.queue.on_put = upgrading.queue.on_put = None  # no writer yet: polls take packets
    waiting, peer = pushes.connect("waiting")
    writer = waiting.queue.on_put.__self__
    writer.running = True  # its greenlet is about to send what is queued
    waiting.queue.put(packet.Packet(packet.NOOP))
    pushes.push(("polling", notification(1)), ("upgrading", notification(2)))
    assert [len(polling.queue.queue), len(upgrading.queue.queue)] == [1, 1]
    frames = pushes.push(("waiting", notification(3)))
    writer.running = False
    writer.wake()
    noop = websocket_frame(packet.Packet(packet.NOOP).encode())
    assert read_exactly(peer, len(noop + frames[0])) == noop + frames[0]
    assert len(puts) == 4


def test_engineios_packet_log_keeps_upstreams_path(puts: list[Any]) -> None:
    pushes = Pushes()
    pushes.server.eio.logger.setLevel(logging.INFO)
    try:
        _, peer = pushes.connect("logged")
        frames = pushes.push(("logged", notification(1)))
    finally:
        pushes.server.eio.logger.setLevel(logging.ERROR)
    assert len(puts) == 1
    assert read_exactly(peer, len(frames[0])) == frames[0]


def test_a_client_past_its_ping_timeout_is_closed_not_sent_to(puts: list[Any]) -> None:
    pushes = Pushes()
    session, peer = pushes.connect("gone")
    session.last_ping = time.time() - pushes.server.eio.ping_timeout - 1
    pushes.push(("gone", notification(1)))
    assert session.closed and puts == [None]  # upstream's close: the writer's end, no packet
    assert peer.recv(2)[:1] == b"\x88"  # the close frame, and nothing before it
