"""The websocket reader a greenlet only while frames come in: between frames no greenlet waits
on the connection, each frame is handled in order, several in one read too, and the loop ends
as upstream's does: at the client's close, at the read timeout (a close frame, then the end),
with the session closed, forgotten and the connection handed back (``finish``)."""

from __future__ import annotations

import logging
import os
import struct
from typing import Any

import gevent
import gevent.socket
import pytest
from engineio import packet
from geventwebsocket.websocket import Stream, WebSocket

from app.patches.engineio import DirectFrameWriter, FrameReader, WriterQueue
from tests.unit.opened import OPENED, close_what_was_opened  # noqa: F401 - the fixture

pytestmark = pytest.mark.unit


class Handler:
    logger = logging.getLogger("test.frame_reader")

    class server:  # noqa: N801 - gevent-websocket reads handler.server.application
        application = None

    def __init__(self, connection: Any) -> None:
        self.socket = connection
        self.rfile = connection.makefile("rb", 1024)
        OPENED.append(self.rfile)


class EngineIOWebSocket:
    """engineio's WebSocketWSGI as the reader sees it."""

    def __init__(self, connection: Any) -> None:
        handler = Handler(connection)
        self._sock = WebSocket({}, Stream(handler), handler)

    def wait(self) -> Any:
        return self._sock.receive()

    def send(self, message: Any) -> None:
        self._sock.send(message)

    def close(self) -> None:
        self._sock.close()


class Reason:
    TRANSPORT_CLOSE = "transport close"


class Server:
    logger = logging.getLogger("test.frame_reader")
    reason = Reason

    def __init__(self) -> None:
        self.sockets: dict[str, Any] = {}


class Session:
    """What the reader uses of engineio's Socket."""

    def __init__(self) -> None:
        self.server = Server()
        self.sid = "sid1"
        self.server.sockets[self.sid] = self
        self.queue = WriterQueue()
        self.closed = False
        self.received: list[Any] = []
        self.readers: list[Any] = []

    def receive(self, pkt: Any) -> None:
        self.received.append(pkt.data)
        self.readers.append(gevent.getcurrent())

    def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        self.closed = True


def start(timeout: float | None = None) -> tuple[FrameReader, Session, Any, list[bool]]:
    ours, peer = gevent.socket.socketpair()
    OPENED.extend((ours, peer))
    ours.settimeout(timeout)
    ws = EngineIOWebSocket(ours)
    session = Session()
    writer = DirectFrameWriter(session.queue, ws)
    session.queue.on_put = writer.wake
    finished: list[bool] = []
    reader = FrameReader(session, ws, ws.wait, writer, lambda: finished.append(True))
    reader.start()
    gevent.sleep(0.01)
    return reader, session, peer, finished


def frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked


def test_between_frames_no_greenlet_waits_and_each_frame_is_handled_in_order() -> None:
    reader, session, peer, finished = start(timeout=30)
    assert reader.io.active and reader.timer is not None and reader.timer.active
    peer.sendall(frame('4"one"'))
    gevent.sleep(0.01)
    peer.sendall(frame('4"two"') + frame('4"three"'))  # two frames in one read
    gevent.sleep(0.01)
    assert session.received == ["one", "two", "three"]
    assert all(reader_greenlet.dead for reader_greenlet in session.readers)
    assert reader.io.active and not finished  # waiting on the watchers again

    peer.sendall(struct.pack("!BB", 0x88, 0x80) + b"\0\0\0\0")  # the client closes
    gevent.sleep(0.05)
    assert peer.recv(2)[:1] == b"\x88"  # gevent-websocket's answer, as before
    assert session.closed and session.sid not in session.server.sockets and finished == [True]
    assert not reader.io.active


def test_a_frame_split_over_reads_is_read_whole() -> None:
    reader, session, peer, finished = start(timeout=30)
    whole = frame('4"split"')
    peer.sendall(whole[:3])
    gevent.sleep(0.01)
    peer.sendall(whole[3:])
    gevent.sleep(0.01)
    assert session.received == ["split"] and not finished


def test_the_read_timeout_closes_the_websocket_and_ends_the_session() -> None:
    reader, session, peer, finished = start(timeout=0.1)
    gevent.sleep(0.3)
    assert peer.recv(2)[:1] == b"\x88"  # the close frame, as upstream's timed-out read sent it
    assert session.closed and finished == [True]


def test_the_end_of_the_connection_ends_the_session() -> None:
    reader, session, peer, finished = start()
    assert reader.timer is None  # no read timeout on the connection: none here either
    peer.close()
    gevent.sleep(0.05)
    assert session.closed and finished == [True]
    assert packet.Packet  # (engineio imported for the packets the reader decodes)
