"""python-engineio overrides.

``Socket.schedule_ping`` (engineio/socket.py) starts a background task per socket that sleeps
``ping_interval`` (25 s by default) and then sends a PING. Under gevent that is one greenlet per
connected socket, asleep almost all of the time, with its saved C stack and frames: a few KB per
idle socket for nothing. Here the wait is a libev timer (a few hundred bytes) and the ping is
sent from a short-lived greenlet when it fires; what goes on the wire, and when, is unchanged.

The protocol edges (python-engineio 4.15.1; each is what the Engine.IO v4 test suite expects):

- ``Socket._websocket_handler`` decodes each frame with ``packet.Packet(encoded_packet=...)``
  outside its ``try``: a text frame that is no Engine.IO packet (``abc``, an empty frame, bad
  base64 after ``b``) raises out of the handler, so the cleanup at its end (``close()``, which
  runs the disconnect handlers) never runs; the session lingers until the ping timeout, its
  user "online", what is sent to them meanwhile pushed into a dead socket and stored
  ``delivered``. A packet of a type a client never sends (``0``, ``6``-``9``) raises
  ``UnknownPacketError``, which the loop ignores. Here the frame is checked as it is read, and
  the session ended at once (``end_session``).
- ``Socket.handle_post_request`` reads ``CONTENT_LENGTH`` bytes: a chunked POST (no length) is
  read as empty and answered ``200 ok``, its packets dropped (the length itself is given by
  ``app.sockets.polling_limit`` now, which reads a chunked body whole). A payload that does not
  decode raises into ``Server.handle_request``'s bare ``except``: logged as an ERROR traceback,
  answered ``200 ok``, the session kept; an unknown packet type raises ``UnknownPacketError``,
  whose handler calls ``Server.disconnect``, which waits for the CLOSE packet to be fetched by a
  GET that may never come. ``Payload.decode`` refuses a POST of more than 16 packets, which the
  JS client sends when 17 events were queued while a POST was under way: all of them dropped.
  Here every packet of a payload bounded by ``MAX_CONTENT_LENGTH`` is taken, and a payload
  that does not decode ends the session (400). A CLOSE from the client answers a waiting GET
  with a NOOP packet (upstream: an empty body).
- ``Socket.handle_get_request`` lets a second long-polling GET of one session wait beside the
  first; the protocol refuses it and ends the session (400; the first GET gets the CLOSE).
- ``Server._service_task`` checks one socket's ping timeout, then waits ``ping_timeout /
  sockets`` s before the next: every socket once per ``ping_timeout``, but one wake-up of the
  process per socket per ``ping_timeout`` (6/s at 125 sockets, 50/s at 1,000), idle or not.
  ``sweep_sockets`` checks every socket in one round every ``ping_timeout / SWEEP_ROUNDS`` s
  (see there).
- ``Server._handle_connect`` announces ``int(ping_interval + grace) * 1000`` ms: a fractional
  interval (0.3 s) is truncated, to 0. ``announce_exact_intervals`` rewrites the OPEN packet
  while it is still queued, unencoded, when the connect event runs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import gevent
import gevent.event
import gevent.queue
from engineio import exceptions, packet
from engineio.server import Server
from engineio.socket import Socket
from geventwebsocket.websocket import MSG_CLOSED, Header, WebSocket

from app.observability import metrics
from app.patches.fence import fence, replace

fence(
    "engineio.base_server.BaseServer.__init__",
    "a06b17502fbd9646e3f29ec85f1e53dbbcdc9ceecce6c2969eb83e4ef1726ee2",
    "relied on by close_all: ``sockets`` is the dict of open sessions by sid",
)
fence(
    "engineio.socket.Socket.close",
    "05fac55831999f25188d658b733f8e1044d5325becfd3c87011a6b03d30003b9",
    "relied on by close_all: close(wait=False, reason=...)",
)
fence(
    "engineio.socket.Socket.schedule_ping",
    "fe316639159cd70d34cdb911a055fc1a0056ff15615b8460a1ab6593c95e9372",
    "replaced by schedule_ping_on_timer: same pings, a libev timer instead of a greenlet",
)
fence(
    "engineio.socket.Socket._websocket_handler",
    "58afe122719282de1def07b5530c154fbf41a40481bc8a787c4eb7d94db56c9c",
    "wrapped: each frame read is checked; one that is no Engine.IO packet ends the session; "
    "under gevent replaced by websocket_session (its upgrade and reader loop, copied): the "
    "writer greenlet exists only while packets are queued",
)
fence(
    "engineio.socket.Socket.poll",
    "d7d705066fd3b9487de647e24e548526a34264ca5b92a61705f26a7471b6e73f",
    "relied on by FrameWriter: what the upstream writer sends (packets up to a None, in order)",
)
fence(
    "engineio.async_drivers.gevent",
    "867247796743404da37e82c23f90e7c153f3b1095c4cb254300e4455fd542fe9",
    "relied on: ``_async['queue']`` makes each session's queue (WriterQueue replaces it)",
)
fence(
    "engineio.async_drivers.gevent.WebSocketWSGI.__call__",
    "6139db9acea7d25cdd84f49065daa0c8b1c16f4bfcb6ac40f6787deb7a8697f9",
    "relied on: ``_sock`` is gevent-websocket's WebSocket, whose ``handler.socket`` is the TCP one",
)
fence(
    "engineio.socket.Socket.handle_post_request",
    "5be8170455a3482c727998a3c416628a915d8ac61dc9780f6cd9f5ae03ac210c",
    "replaced: the whole payload, every packet, a broken one ends the session",
)
fence(
    "engineio.socket.Socket.handle_get_request",
    "d45c0d8f98840672fe8c05b567d6268a561f5139dd6513f635925505a08ef223",
    "wrapped: a second concurrent long-polling GET ends the session",
)
fence(
    "engineio.socket.Socket.receive",
    "4126eb2537d0d0207f519f6e9ff1cb06cf320b7084323bb7946a107b3f6b0712",
    "relied on: CLOSE closes with abort (no packet queued), PING raises UnknownPacketError",
)
fence(
    "engineio.server.Server._trigger_event",
    "bc536417c3045418c33413e1e8c343b71bacc2f7a5b830f0d35881923bde83e8",
    "relied on: the disconnect event of a session whose CLOSE is still to be fetched",
)
fence(
    "engineio.base_server.BaseServer._get_socket",
    "ae2f99e66d63294467faaf502df94ffa33926d5c098a7d1cfe78259504d08a62",
    "relied on: a closed session is refused (so one with a CLOSE to fetch is left open)",
)
fence(
    "engineio.server.Server._handle_connect",
    "049f7c2b2c239080a6481e23e5af43340b0afe7571064b1af495f91cb946bb6c",
    "relied on: the OPEN packet is queued, not yet encoded, when the connect event runs",
)
fence(
    "engineio.server.Server._service_task",
    "9492b7b0d652907d9477eb3b54cc39293a5fadc028d3e30d3f09c7e7f72b0a6d",
    "replaced by sweep_sockets: the same checks, all sockets in one round per period",
)
fence(
    "engineio.socket.Socket.check_ping_timeout",
    "ccddc110d983617671490a8ed8e2ca1ae1b405e86fc6915968fb77d8c2f1f4c7",
    "relied on by sweep_sockets: closes (a CLOSE queued) a socket whose PING went unanswered "
    "for ping_timeout, raises SocketIsClosedError for a closed one",
)
fence(
    "engineio.server.Server.shutdown",
    "65281c2fdcc2fd5903795dc243701dff2d7f60b79cfdb78d0baf6b895c3dac66",
    "relied on by sweep_sockets: sets service_task_event, then joins the task",
)
fence(
    "engineio.server.Server.handle_request",
    "79302edd007fcce6bd6b3efe09a970eac12c89690a83687a119af99565667174",
    "relied on: an EngineIOError from a socket's request handler is answered 400",
)

fence(
    "engineio.socket.Socket.send",
    "f8b2738ee5d48ab284f078db0e6ee53b1725df575dbe200194904a3c92541066",
    "bypassed by send_whole: a packet to a live session is queued (check_ping_timeout first); "
    "what is queued, DirectFrameWriter sends",
)
fence(
    "engineio.server.Server.send_packet",
    "81aec513663f11e1636b26bd49b79c2a0d0ed620917ef69e4146111d6cab2955",
    "bypassed by send_whole: the session found by sid (_get_socket), then Socket.send",
)
fence(
    "geventwebsocket.websocket.Header.encode_header",
    "14e5dfd8e3b6d960507c8e8afe9eb8224efeae555b16e4eb2373b7ac9d6fec85",
    "copied in websocket_frame (a final frame, unmasked, no RSV flags): 0.9 -> 0.2 us a frame",
)
fence(
    "geventwebsocket.websocket.WebSocket.send_frame",
    "b2937fb4e8f711f0c87322d33d6481926ed70dbe66206f7843db94899b11357a",
    "relied on by websocket_frame: a header (Header.encode_header) and the payload, one write",
)
fence(
    "geventwebsocket.websocket.WebSocket.send",
    "b2446b51b34e6e600f0a9590988cd47b245eb97fe25f064d34303a4c8aac1dbc",
    "relied on by websocket_frame: a str goes as a text frame, anything else as binary",
)

log = logging.getLogger("notify.protocol")
#: ``app.observability.logging.FIELDS``, written out: that module imports the socket handlers,
#: which import this module.
LOG_FIELDS = "notify_fields"
#: What a client may send over long-polling: CLOSE, PONG, MESSAGE, UPGRADE, and ``b`` (a
#: base64 binary MESSAGE). Over websocket PING too (the upgrade's probe; ignored after it).
POLLING_PACKETS = frozenset("1345b")
WEBSOCKET_PACKETS = POLLING_PACKETS | {"2"}
DESCRIPTIONS = {
    "engineio_packet": "an Engine.IO packet that does not parse or of an unknown type",
    "socketio_packet": "a Socket.IO packet that does not parse or of an unknown type",
    "unknown_namespace": "a CONNECT to an unknown namespace",
    "overlapping_poll": "a second concurrent long-polling GET",
    "connect_timeout": "no Socket.IO CONNECT within CONNECT_TIMEOUT",
}


class BrokenPacket(exceptions.EngineIOError):  # type: ignore[misc]
    """Raised out of a request handler once its session was ended: answered 400."""


def end_session(
    session: Any,
    kind: str,
    address: str | None,
    level: int = logging.WARNING,
    after_next_poll: bool = False,
) -> None:
    """End an Engine.IO session for what its client sent (or did not send): its disconnect
    handlers run at once (presence, connection log), and a CLOSE packet is queued for it. One log
    line, no traceback, and one count by ``kind``.

    ``after_next_poll``: the client must still get what was queued before the CLOSE (a
    CONNECT_ERROR). A long-polling session with no GET waiting (its POST came first) is then
    closed by the next GET, once that GET has fetched it: python-engineio refuses any request
    of a closed session. Meanwhile nothing it sends is handled."""
    if session.closed or session.closing:
        return
    reason = session.server.reason.TRANSPORT_ERROR
    if session.__dict__.get("notify_ending"):  # already reported, its disconnect work done
        if not after_next_poll:
            session.close(wait=False, abort=True, reason=reason)
        return
    report(kind, session.sid, address, level)
    if after_next_poll and not session.upgraded and not session.__dict__.get("notify_polling"):
        session.notify_ending = True
        session.server._trigger_event("disconnect", session.sid, reason, run_async=False)
        session.send(packet.Packet(packet.CLOSE))
        return
    session.close(wait=False, abort=False, reason=reason)


def report(kind: str, sid: str, address: str | None, level: int = logging.WARNING) -> None:
    """The log line and the count of a session ended for ``kind``."""
    metrics.session_ended_by_protocol(kind)
    address = (address or "")[:64] or None
    fields = {"type": "protocol", "kind": kind, "sid": sid, "remote_addr": address}
    log.log(
        level,
        "ended Engine.IO session %s of %s: %s",
        sid,
        address or "-",
        DESCRIPTIONS[kind],
        extra={LOG_FIELDS: fields},
    )


def well_formed(encoded: str, allowed: frozenset[str]) -> bool:
    """Whether ``encoded`` is an Engine.IO packet of an ``allowed`` type that decodes."""
    if not encoded or encoded[0] not in allowed:
        return False
    if encoded[0] == "b":
        try:
            base64.b64decode(encoded[1:], validate=True)
        except binascii.Error:
            return False
    return True


def decode_payload(body: bytes) -> list[Any]:
    """Every packet of a long-polling payload (``\\x1e``-separated, or JSONP ``d=``), or
    ValueError when one does not decode or is of a type a client never sends."""
    text = body.decode("utf-8")
    if not text:
        return []
    if text.startswith("d="):
        text = parse_qs(text).get("d", [""])[0]
    packets = []
    for encoded in text.split("\x1e"):
        if not well_formed(encoded, POLLING_PACKETS):
            raise ValueError("not an Engine.IO packet")
        packets.append(packet.Packet(encoded_packet=encoded))
    return packets


def read_body(environ: dict[str, Any]) -> bytes:
    """The request's ``CONTENT_LENGTH`` bytes (fewer only if the client hung up)."""
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    chunks = []
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def handle_post_request(self: Any, environ: dict[str, Any]) -> None:
    """``Socket.handle_post_request``: the whole payload, every packet of it, in order; a payload
    that does not decode ends the session (400)."""
    if int(environ.get("CONTENT_LENGTH") or 0) > self.server.max_http_buffer_size:
        raise exceptions.ContentTooLongError()  # answered 413 before (app.sockets.polling_limit)
    try:
        packets = decode_payload(read_body(environ))
    except ValueError:  # UnicodeDecodeError and binascii.Error are ValueErrors too
        end_session(self, "engineio_packet", environ.get("REMOTE_ADDR"))
        raise BrokenPacket() from None
    for pkt in packets:
        if self.closed or self.__dict__.get("notify_ending"):  # ended by a packet before this one
            break
        if pkt.packet_type == packet.CLOSE:
            # Answers a waiting GET: the client's close is no transport error.
            self.queue.put(packet.Packet(packet.NOOP))
        self.receive(pkt)


_upstream_handle_get_request: Callable[..., Any] = Socket.handle_get_request
_upstream_websocket_handler: Callable[..., Any] = Socket._websocket_handler


def handle_get_request(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    """``Socket.handle_get_request``; a long-polling GET while another is waiting ends the
    session (400), as the protocol asks."""
    if environ.get("HTTP_UPGRADE"):
        return _upstream_handle_get_request(self, environ, start_response)
    if self.__dict__.get("notify_polling"):
        end_session(self, "overlapping_poll", environ.get("REMOTE_ADDR"))
        raise BrokenPacket()
    self.notify_polling = True
    try:
        return _upstream_handle_get_request(self, environ, start_response)
    finally:
        self.notify_polling = False
        if self.__dict__.get("notify_ending"):  # this GET fetched the session's last packets
            self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_ERROR)


def websocket_handler(self: Any, ws: Any) -> Any:
    """``Socket._websocket_handler``, each frame checked as it is read: one that is no Engine.IO
    packet ends the session at once, and reads as the end of the connection to the loop. And a
    close by the server hangs up: see ``hang_up_on_close``. Under gevent's worker (the session's
    queue a ``WriterQueue``): ``websocket_session``."""
    if isinstance(self.queue, WriterQueue):
        return websocket_session(self, ws)
    receive = ws.wait
    hang_up_on_close(ws)

    def wait() -> Any:
        data = receive()
        if isinstance(data, str) and not well_formed(data, WEBSOCKET_PACKETS):
            end_session(self, "engineio_packet", ws.environ.get("REMOTE_ADDR"))
            return None
        return data

    ws.wait = wait
    return _upstream_websocket_handler(self, ws)


def tcp_connection(ws: Any) -> Any:
    """The TCP socket under engineio's ``WebSocketWSGI`` (gevent-websocket's handler's)."""
    return getattr(getattr(getattr(ws, "_sock", None), "handler", None), "socket", None)


def hang_up_on_close(ws: Any) -> None:
    """After the writer's close frame, shut the connection's read side.

    A session closed by the server (a broken packet, CONNECT_TIMEOUT, a ping timeout, an unknown
    namespace) gets its CLOSE packet and the close frame, but gevent-websocket leaves the TCP
    connection to the caller, and the reading greenlet waits for the client's next frame: a
    client that never answers keeps the connection until the socket timeout (50 s). Shut for
    reading, the read returns at once and the handler ends, closing the connection.
    """
    close_frame = ws.close
    connection = tcp_connection(ws)

    def close() -> Any:
        try:
            return close_frame()
        finally:
            if connection is not None:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RD)

    ws.close = close


def close_and_hang_up(ws: Any, connection: Any) -> None:
    """``hang_up_on_close``'s close, called directly (no closure kept on ``ws``)."""
    try:
        ws.close()
    finally:
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RD)


# ---- the websocket writer only while packets are queued (gevent) ---------------------------
# Upstream's writer is a greenlet per websocket session, asleep on the queue between packets:
# its greenlet, saved stack and frames cost ≈ 7 KB per idle socket (bench/PROFILE.md). Here the
# queue tells the session's ``FrameWriter`` of each put, and a greenlet is spawned to send what
# is queued; it ends once the queue is empty. What goes on the wire is what upstream's writer
# sends: every packet in order up to the None that ``close()`` (or the reader's end) queues,
# then the close frame. Upstream's writer also closes a websocket that had no packet queued in
# ``ping_interval + ping_timeout``: here the service task's ping timeout (a CLOSE after
# ``ping_timeout`` without a PONG) and the connection's read timeout do it.


class WriterQueue:
    """An Engine.IO session's queue (engineio's ``_async['queue']``, upstream gevent's
    ``JoinableQueue``), calling ``on_put`` after each put.

    What engineio and these patches use of gevent's queue, in its semantics (FIFO; a blocking
    ``get`` with a timeout raising ``gevent.queue.Empty``; ``task_done`` and ``join``; the items
    as ``queue``), in a tenth of its memory: gevent's keeps three deques and an event per
    session (2.5 KB measured by tracemalloc), this one a list, and an event only while a
    greenlet waits on it."""

    __slots__ = ("queue", "unfinished_tasks", "on_put", "_getters", "_joiners")

    def __init__(self, maxsize: int | None = None) -> None:
        if maxsize:
            raise ValueError("an Engine.IO session queue is unbounded")
        self.queue: list[Any] = []
        self.unfinished_tasks = 0
        self.on_put: Callable[[], None] | None = None
        self._getters: list[gevent.event.Event] | None = None
        self._joiners: list[gevent.event.Event] | None = None

    def qsize(self) -> int:
        return len(self.queue)

    def empty(self) -> bool:
        return not self.queue

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self.queue.append(item)
        self.unfinished_tasks += 1
        getters = self._getters
        if getters:
            self._getters = None
            for getter in getters:
                getter.set()  # woken from the hub, as gevent's queue wakes its getters
        on_put = self.on_put
        if on_put is not None:
            on_put()

    put_nowait = put

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if self.queue:
            return self.queue.pop(0)
        if not block:
            raise gevent.queue.Empty()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.queue:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise gevent.queue.Empty()
            getter = gevent.event.Event()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                getter.wait(remaining)
            finally:
                if self._getters is not None and getter in self._getters:
                    self._getters.remove(getter)
        return self.queue.pop(0)

    def get_nowait(self) -> Any:
        return self.get(block=False)

    def task_done(self) -> None:
        if self.unfinished_tasks <= 0:
            raise ValueError("task_done() called too many times")
        self.unfinished_tasks -= 1
        if self.unfinished_tasks == 0 and self._joiners:
            joiners, self._joiners = self._joiners, None
            for joiner in joiners:
                joiner.set()

    def join(self, timeout: float | None = None) -> bool:
        if self.unfinished_tasks == 0:
            return True
        joiner = gevent.event.Event()
        if self._joiners is None:
            self._joiners = []
        self._joiners.append(joiner)
        return bool(joiner.wait(timeout))


class FrameWriter:
    """Sends a websocket session's queued packets, from a greenlet that exists only while some
    are queued."""

    __slots__ = ("queue", "ws", "connection", "running", "done", "finished")

    def __init__(self, queue: WriterQueue, ws: Any) -> None:
        self.queue = queue
        self.ws = ws
        self.connection = tcp_connection(ws)
        self.running = False  # a greenlet is sending (or about to)
        self.done = False  # the None was taken or a send failed: the websocket is closed
        self.finished: gevent.event.Event | None = None  # set once done and not running

    def wake(self) -> None:
        if not self.running and not self.done:
            self.running = True
            gevent.spawn_raw(self.drain)

    def drain(self) -> None:
        """What upstream's writer loop does, until the queue is empty."""
        queue = self.queue
        try:
            while not self.done:
                try:
                    pkt = queue.get(block=False)
                except gevent.queue.Empty:
                    return
                queue.task_done()
                if pkt is None:
                    self.close()
                    return
                try:
                    self.ws.send(pkt.encode())
                except Exception:  # as upstream: the writer stops and closes
                    self.close()
        finally:
            self.running = False
            if self.done and self.finished is not None:
                self.finished.set()

    def close(self) -> None:
        self.done = True
        with contextlib.suppress(Exception):
            close_and_hang_up(self.ws, self.connection)

    def wait_done(self) -> None:
        """Until the None was sent through (upstream: ``writer_task.join()``)."""
        if self.done and not self.running:
            return
        self.finished = gevent.event.Event()
        self.finished.wait()


# ---- frames written by the caller when the connection takes them at once (gevent) ----------
# A FrameWriter spawns a greenlet per wake-up; a batch push of 1,000 sockets is then 1,000
# greenlets, each a spawn, a switch and a sendall. A frame the kernel takes whole right now
# needs none of that: ``DirectFrameWriter`` sends it from the greenlet that queued it, with a
# send that never waits (gevent's ``send(..., timeout=0.0)``). A frame the kernel takes only
# in part, or not at all (a slow client), goes to the FrameWriter's greenlet as before, the
# rest of a part-sent frame first: the caller never waits for a client, and every socket gets
# its packets whole and in order. The bytes are gevent-websocket's ``send_frame``'s.


def websocket_frame(encoded: str | bytes) -> bytes:
    """gevent-websocket's ``WebSocket.send(encoded)`` frame: text for str, binary for bytes."""
    if isinstance(encoded, str):
        opcode, payload = WebSocket.OPCODE_TEXT, encoded.encode("utf-8")
    else:
        opcode, payload = WebSocket.OPCODE_BINARY, bytes(encoded)
    length = len(payload)
    first = Header.FIN_MASK | opcode  # Header.encode_header's, unmasked, no RSV flags
    if length < 126:
        return bytes((first, length)) + payload
    if length <= 0xFFFF:
        return struct.pack("!BBH", first, 126, length) + payload
    return struct.pack("!BBQ", first, 127, length) + payload


class DirectFrameWriter(FrameWriter):
    """A FrameWriter whose packets are sent by the caller of ``put`` while the connection
    takes each frame whole at once; the greenlet only for the rest."""

    __slots__ = ("rest",)

    def __init__(self, queue: WriterQueue, ws: Any) -> None:
        super().__init__(queue, ws)
        self.rest: bytes | None = None  # the unsent end of a frame: the greenlet sends it first

    def wake(self) -> None:
        if self.running or self.done:
            return
        queue = self.queue.queue
        connection = self.connection
        websocket = getattr(self.ws, "_sock", None)  # gevent-websocket's, under engineio's
        while queue and connection is not None and websocket is not None:
            pkt = queue[0]
            if pkt is None or websocket.closed:
                break  # the close, or a dead socket: the greenlet's way (upstream's)
            frame = websocket_frame(pkt.encode())
            sent = self.send_now(frame)
            if sent is None:
                break  # the greenlet's send fails too, and closes as upstream does
            if sent:
                self.queue.get(block=False)
                self.queue.task_done()
            if sent < len(frame):
                break
        if queue or self.rest is not None:
            super().wake()

    def send_now(self, frame: bytes) -> int | None:
        """Hand ``frame`` to the kernel without waiting: the bytes it took (its unsent end, if
        any, kept as ``rest`` for the greenlet), or None when the connection failed."""
        try:
            sent: int = self.connection.send(frame, 0, 0.0)
        except BlockingIOError:
            return 0
        except OSError:
            return None
        if 0 < sent < len(frame):
            self.rest = frame[sent:]
        return sent

    def drain(self) -> None:
        rest, self.rest = self.rest, None
        if rest is not None and not self.done:
            try:
                self.connection.sendall(rest)
            except Exception:  # as upstream: the writer stops and closes
                self.close()
        super().drain()


def send_whole(eio: Any, eio_sid: str, frame: bytes) -> bool:
    """``Server.send_packet(eio_sid, pkt)`` for a packet whose frame is ``frame``, done here
    when the session is an upgraded websocket with nothing queued and its writer idle: the
    frame goes to the kernel as ``DirectFrameWriter.wake`` sends it after a put, without the
    lookup, the put, the wake and the get of each packet (a batch push sends 1,000).

    False when nothing was sent: the caller then takes ``send_packet``, which handles every
    other case (polling, an upgrade under way, packets already queued, a dead socket, a
    client gone past its ping timeout, the kernel taking nothing) as upstream does.
    """
    sock = eio.sockets.get(eio_sid)
    if sock is None or sock.closed or not sock.upgraded or sock.upgrading:
        return False
    queue = sock.queue
    if type(queue) is not WriterQueue or queue.queue or queue._getters:
        return False
    writer = getattr(queue.on_put, "__self__", None)
    if type(writer) is not DirectFrameWriter or writer.running or writer.done:
        return False
    connection = writer.connection
    websocket = getattr(writer.ws, "_sock", None)
    if writer.rest is not None or connection is None or websocket is None or websocket.closed:
        return False
    if not sock.check_ping_timeout():
        return False  # closed now, a CLOSE queued: send_packet finds it closed, as upstream
    if not writer.send_now(frame):
        return False  # nothing taken, or a failed connection: send_packet's way
    if writer.rest is not None:
        FrameWriter.wake(writer)  # the greenlet sends the rest, then what is queued after it
    return True


def websocket_session(self: Any, ws: Any) -> list[Any]:
    """``Socket._websocket_handler`` (python-engineio 4.15.1, copied): the upgrade, then the
    reader loop, each frame checked as ``websocket_handler`` does; the writer a ``FrameWriter``.
    Nothing is stored on ``ws``: the session leaves no reference cycle through it."""
    server = self.server
    limit = server.max_http_buffer_size

    def websocket_wait() -> Any:
        data = ws.wait()
        if isinstance(data, str) and not well_formed(data, WEBSOCKET_PACKETS):
            end_session(self, "engineio_packet", ws.environ.get("REMOTE_ADDR"))
            return None
        if data and len(data) > limit:
            raise ValueError("packet is too large")
        return data

    for attr in ["_sock", "socket"]:
        if hasattr(ws, attr) and hasattr(getattr(ws, attr), "settimeout"):
            getattr(ws, attr).settimeout(server.ping_interval + server.ping_timeout)

    if self.connected:
        # the socket was already connected, so this is an upgrade
        self.upgrading = True  # hold packet sends during the upgrade
        pkt = websocket_wait()
        decoded_pkt = packet.Packet(encoded_packet=pkt)
        if decoded_pkt.packet_type != packet.PING or decoded_pkt.data != "probe":
            server.logger.info("%s: Failed websocket upgrade, no PING packet", self.sid)
            self.upgrading = False
            return []
        ws.send(packet.Packet(packet.PONG, data="probe").encode())
        self.queue.put(packet.Packet(packet.NOOP))  # end poll
        pkt = websocket_wait()
        decoded_pkt = packet.Packet(encoded_packet=pkt)
        if decoded_pkt.packet_type != packet.UPGRADE:
            self.upgraded = False
            server.logger.info(
                "%s: Failed websocket upgrade, expected UPGRADE packet, received %s instead.",
                self.sid,
                pkt,
            )
            self.upgrading = False
            return []
        self.upgraded = True
        self.upgrading = False
    else:
        self.connected = True
        self.upgraded = True

    writer = DirectFrameWriter(self.queue, ws)
    self.queue.on_put = writer.wake
    writer.wake()  # what was queued before (the OPEN, the CONNECT's answer)
    server.logger.info("%s: Upgrade to websocket successful", self.sid)

    finish = getattr(getattr(getattr(ws, "_sock", None), "handler", None), "detach", None)
    finish = finish() if finish is not None else None
    if finish is not None:  # the connection's greenlet ends; the reader runs while frames come
        FrameReader(self, ws, websocket_wait, writer, finish).start()
        return []
    try:
        while read_one(self, websocket_wait):
            pass
        end_reading(self, writer)
    finally:
        self.queue.on_put = None
    forget(self)
    return []


def read_one(self: Any, websocket_wait: Callable[[], Any]) -> bool:
    """One turn of ``Socket._websocket_handler``'s reader loop (copied): a frame read and
    handled; False where upstream's loop breaks."""
    server = self.server
    p = None
    try:
        p = websocket_wait()
    except Exception as e:
        if not self.closed:
            server.logger.info('%s: Unexpected error "%s", closing connection', self.sid, str(e))
        return False
    if p is None:  # connection closed by client
        return False
    pkt = packet.Packet(encoded_packet=p)
    try:
        self.receive(pkt)
    except exceptions.UnknownPacketError:
        pass
    except exceptions.SocketIsClosedError:
        server.logger.info("Receive error -- socket is closed")
        return False
    except Exception:
        server.logger.exception("Unknown receive error")
        return False
    return True


def end_reading(self: Any, writer: FrameWriter) -> None:
    """Once upstream's loop broke: the writer sends what is queued, then closes."""
    self.queue.put(None)
    writer.wait_done()


def forget(self: Any) -> None:
    """The end of ``Socket._websocket_handler``, then of Engine.IO's
    ``Server._handle_connect``: the session closed, and forgotten."""
    server = self.server
    self.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)
    if server.sockets.get(self.sid) is self:
        del server.sockets[self.sid]


# ---- the websocket reader only while frames come in (gevent) -------------------------------
# Upstream reads a websocket from the connection's greenlet, blocked in ``recv`` between
# frames: that greenlet's saved C stack, frames and data-stack pages are most of what an idle
# socket costs (bench/PROFILE.md). Here, once the connection's greenlet has handed the
# websocket over (``app.patches.gevent.TimeoutHandler.detach``) and ended, the reader loop runs
# in a greenlet only while frames are buffered or readable; between them the socket waits on a
# libev read watcher and a timer (the connection's read timeout), and a greenlet is spawned when
# one fires. Each frame is read and handled as upstream's loop does (``read_one``), the whole
# frame by blocking reads once its first byte came; the timer's end is the read timeout
# upstream's ``recv`` raises: gevent-websocket closes the websocket and the read is None.


class FrameReader:
    """An upgraded websocket's reader: a greenlet while frames come in, watchers between."""

    __slots__ = ("session", "ws", "wait", "writer", "finish", "rfile", "connection", "io", "timer")

    def __init__(
        self,
        session: Any,
        ws: Any,
        wait: Callable[[], Any],
        writer: FrameWriter,
        finish: Callable[[], None],
    ) -> None:
        self.session = session
        self.ws = ws
        self.wait = wait
        self.writer = writer
        self.finish = finish
        self.rfile = ws._sock.handler.rfile
        self.connection = tcp_connection(ws)
        loop = gevent.get_hub().loop
        self.io = loop.io(self.connection.fileno(), 1)  # readable
        timeout = self.connection.gettimeout()
        self.timer = loop.timer(timeout) if timeout else None  # the read timeout

    def start(self) -> None:
        gevent.spawn_raw(self.run, False)

    def run(self, woken: bool) -> None:
        """Frames, as long as some are buffered or readable; then the watchers (the greenlet
        ends) or, once the loop breaks, the end of the session and of its connection."""
        try:
            while True:
                if not woken and self.nothing_to_read():
                    self.io.start(self.readable)
                    if self.timer is not None:
                        self.timer.start(self.timed_out)
                    return
                woken = False
                if not read_one(self.session, self.wait):
                    break
        except BaseException:
            self.end(broke=False)
            raise
        self.end(broke=True)

    def nothing_to_read(self) -> bool:
        """Nothing buffered and nothing to read on the connection right now."""
        connection = self.connection
        timeout = connection.gettimeout()
        connection.settimeout(0.0)
        try:
            return not self.rfile.peek(1)  # b"" when a read would wait (or at the end)
        except OSError:
            return False  # the read finds it
        finally:
            connection.settimeout(timeout)

    def readable(self) -> None:
        """From the hub: a frame (or the end) came."""
        self.io.stop()
        if self.timer is not None:
            self.timer.stop()
        gevent.spawn_raw(self.run, True)

    def timed_out(self) -> None:
        """From the hub: nothing came for the read timeout."""
        self.io.stop()
        gevent.spawn_raw(self.time_out)

    def time_out(self) -> None:
        """What upstream's ``recv`` timing out does: gevent-websocket closes the websocket and
        the read is None, so the loop breaks."""
        broke = False
        try:
            websocket = self.ws._sock
            websocket.close()
            websocket.current_app.on_close(MSG_CLOSED)
            broke = True
        finally:
            self.end(broke)

    def end(self, broke: bool) -> None:
        """As upstream's handler ends: after its loop broke (``broke``), or an exception."""
        self.io.close()
        if self.timer is not None:
            self.timer.close()
        try:
            try:
                if broke:
                    end_reading(self.session, self.writer)
            finally:
                self.session.queue.on_put = None
            if broke:
                forget(self.session)
        finally:
            self.finish()


def announce_exact_intervals(session: Any) -> None:
    """Fix the queued OPEN packet's ``pingInterval``/``pingTimeout`` (ms): upstream truncates a
    fractional interval to whole seconds (0.3 s -> 0)."""
    queued = session.queue.queue
    opening = queued[0] if queued else None
    if opening is None or opening.packet_type != packet.OPEN or opening.encode_cache:
        return
    server = session.server
    opening.data["pingInterval"] = round(
        (server.ping_interval + server.ping_interval_grace_period) * 1000
    )
    opening.data["pingTimeout"] = round(server.ping_timeout * 1000)


def schedule_ping_on_timer(self: Any) -> None:
    """``Socket.schedule_ping``: the same ping, waited for on a libev timer."""
    if not self.last_ping:
        return  # the previous ping is still unanswered
    self.last_ping = None
    timer = gevent.get_hub().loop.timer(self.server.ping_interval)

    def send_ping() -> None:
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            self.send(packet.Packet(packet.PING))

    def fire() -> None:
        timer.close()
        gevent.spawn_raw(send_ping)

    timer.start(fire)


#: Rounds of the ping-timeout sweep per ``ping_timeout``: a socket whose PING went unanswered is
#: closed at most ``ping_timeout / SWEEP_ROUNDS`` s after its timeout (upstream: up to
#: ``ping_timeout`` after it, the time its round robin takes to come back to it).
SWEEP_ROUNDS = 4
#: The longest a sweep waits between rounds, whatever ``ping_timeout``.
MAX_SWEEP_SECONDS = 5.0
#: Sockets checked between two yields to the event loop (a round of 10,000 sockets is a few
#: ms of CPU; nothing else waits that long for it).
SWEEP_CHUNK = 500


def sweep_period(server: Any) -> float:
    """Seconds between two rounds of ``sweep_sockets``."""
    return float(min(MAX_SWEEP_SECONDS, server.ping_timeout / SWEEP_ROUNDS))


def sweep_sockets(self: Any) -> None:
    """``Server._service_task``: every ``sweep_period`` s one round over every socket, each
    checked as upstream checks it (a closed one removed from ``sockets``; ``check_ping_timeout``
    on one that is not closing), then one wait. Upstream checks one socket per wake-up, paced so
    that every socket comes back once per ``ping_timeout``: a process with N idle sockets wakes
    N times per ``ping_timeout``. Here it wakes once per period whatever N, and a client that
    stops answering is closed within ``ping_interval + ping_timeout + sweep_period`` of its last
    PONG (upstream: within ``ping_interval + 2 * ping_timeout``). Stopped by
    ``service_task_event``, as upstream (``Server.shutdown``)."""
    self.service_task_event = event = self.create_event()
    period = sweep_period(self)
    while not event.wait(timeout=period):
        try:
            sweep_round(self)
        except (SystemExit, KeyboardInterrupt):
            break
        except Exception:  # as upstream: logged, and the task goes on
            self.logger.exception("service task exception")
    self.logger.info("service task canceled")


def sweep_round(server: Any) -> None:
    """One round of ``sweep_sockets``: upstream's checks, for every socket at once."""
    sockets = server.sockets
    for checked, s in enumerate(list(sockets.values()), 1):
        if s.closed:
            if sockets.get(s.sid) is s:
                del sockets[s.sid]
        elif not s.closing:
            with contextlib.suppress(exceptions.SocketIsClosedError):
                s.check_ping_timeout()  # closed since the line above (upstream: caught below)
        if checked % SWEEP_CHUNK == 0:
            server.sleep(0)


def close_all(engine: Any) -> None:
    """Close every session of an Engine.IO server at once (SIGTERM), their disconnect handlers
    run. python-engineio has no public call for it: its sessions are in ``engine.sockets``.

    Without waiting for the CLOSE packet to go out: a polling client that is gone would never
    fetch it, and waiting would leave every later socket open.
    """
    for sid, session in list(engine.sockets.items()):
        session.close(wait=False, reason=engine.reason.SERVER_DISCONNECT)
        engine.sockets.pop(sid, None)


def install() -> None:
    """The pings on timers, and the websocket writer only while packets are queued; call after
    gevent's monkey patching (the worker does)."""
    from engineio.async_drivers import gevent as gevent_driver

    replace(Socket, "schedule_ping", schedule_ping_on_timer)
    gevent_driver._async["queue"] = WriterQueue


def install_protocol_edges() -> None:
    """The protocol fixes, in every async mode (``create_app`` calls this; idempotent)."""
    replace(Socket, "handle_post_request", handle_post_request)
    replace(Socket, "handle_get_request", handle_get_request)
    replace(Socket, "_websocket_handler", websocket_handler)
    replace(Server, "_service_task", sweep_sockets)
