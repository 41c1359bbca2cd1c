"""python-socketio overrides: rooms indexed by client as well as by room, so a disconnect costs
what the client joined.

python-socketio finds a leaving client's rooms by copying and scanning every room of the
namespace. Here each client is in three (every client's own, ``None`` for all clients, and its
user's room), but a process with 10,000 sockets has 20,000 rooms: each disconnect copied and
scanned all of them, and a mass disconnect (a balancer restart, a network blip) kept the worker
busy past gunicorn's 30 s timeout, which then killed it (found by bench/run.sh at 10,000
sockets). With the index a disconnect touches the client's own rooms only.

The protocol edges (python-socketio 5.18.1):

- ``Server._handle_eio_message`` decodes with ``Packet(encoded_packet=...)`` and dispatches
  without a check: ``2["unterminated"`` raises ``JSONDecodeError``, an unknown type (``7``) or a
  client's CONNECT_ERROR raises ``ValueError``, an EVENT whose payload is no array (``2{}``,
  ``2``) raises ``KeyError``/``TypeError`` in ``_handle_event``. Each goes up to
  python-engineio's ``_trigger_event``, which logs an ERROR traceback (on its own plain-text
  stderr handler as well as the root logger: twice, one not JSON) and keeps the session. Here
  ``handle_eio_message`` decodes and checks first (the checks socket.io-parser makes: an EVENT
  is a non-empty array starting with the event name, an ACK an array), and a packet that
  fails ends the session at once (``engineio.end_session``).
- ``Server._handle_connect`` answers a CONNECT to a namespace nobody serves with the string
  ``"Unable to connect"`` (a v4 payload; v5 clients read ``err.message`` from an object, so it
  is empty) and keeps the session. Here it is ``{"message": "Invalid namespace"}``, as the
  reference server sends, and the session ends.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import socketio
from engineio import packet as eio_packet
from engineio import server as engineio_server
from socketio import packet

from app.json_texts import SLOT_TYPES, ValueTexts, json_value_texts, shaped_texts
from app.patches import engineio
from app.patches.fence import fence, replace

for _name, _sha, _why in (
    (
        "basic_disconnect",
        "2933b50bc4b2ea7b4367a84e05c2e22c52fed98b00afc3b88d06d61ab9fb9aa1",
        "copied, with the rooms taken from the index",
    ),
    (
        "basic_enter_room",
        "3f509586d2d7f47ec92cc5113a80f5302ca1d82fb3689ee530edd3aa9ad6a1a3",
        "wrapped: the index follows",
    ),
    (
        "basic_leave_room",
        "e27f3eea06d1c6a6ea295e99f62477330af4779e1f1853753e94f309ef0e74f2",
        "wrapped: the index follows",
    ),
):
    fence(f"socketio.base_manager.BaseManager.{_name}", _sha, _why)

#: python-socketio's uses of a namespace's pending connects and disconnects: a list made by
#: ``self.pending_...[namespace] = []``, then ``append``, ``in``, ``remove`` and ``len`` only.
for _name, _sha in (
    ("__init__", "bfee992d912fe9a4c1ba65094bb011c65a7721abd345a60ff1cc99df127c5a94"),
    ("pre_connect", "bfdba4c0c8f1bd8ac98edee1b3aece8c820a0a9d0528776c36db5cea1724d01a"),
    ("connect", "a0214ac7cb24346cbfeec7e87f4f1b7b647622312811345dd093480be4eb330b"),
    ("is_pre_connected", "40a897c4ab2ccc5daa90d1858ef7d500ac68fb9836c121e53f61b3a98239a517"),
    ("is_connected", "d37721466718b4f48d4a73edb545b660bd4c253027009eb68663d3564cce2341"),
    ("pre_disconnect", "18a8d01ed87a96828b48c432aed6c0bbbe8baf883647299ad5c061c8c2552723"),
):
    fence(
        f"socketio.base_manager.BaseManager.{_name}",
        _sha,
        "relied on by PendingByNamespace: the pending lists are made by item assignment and "
        "used by append, in, remove and len only",
    )


fence(
    "socketio.server.Server._handle_eio_message",
    "65f309c138d634ebe0163274886cfb6055ed356fa3038eab4efa8e7e9bc79d89",
    "copied, with every packet checked before it is dispatched",
)
fence(
    "socketio.server.Server._handle_connect",
    "1b0ba130a57d9320f3d83c3c445796cdeffc62e6f35867b9912d45ce5162741e",
    "wrapped: an unknown namespace is refused as the reference server does, and ends the "
    "session; when_connected relies on the CONNECT being sent before it returns, and on a "
    "refusal calling manager.disconnect",
)
for _target, _sha in (
    (
        "socketio.manager.Manager.disconnect",
        "013b92ff9356d7847f6ded972b94a7d333cdca388a4f0552282bde11a695d7c4",
    ),
    (
        "socketio.pubsub_manager.PubSubManager.disconnect",
        "4d00efbd9ad80c5aed8f84a287e7b2effa2658992272174579383296056fa225",
    ),
):
    fence(
        _target,
        _sha,
        "relied on: a refused handshake's disconnect (ignore_queue) reaches basic_disconnect, "
        "which drops the socket's held pushes and its when_connected callback",
    )
fence(
    "socketio.server.Server._handle_eio_connect",
    "4be135c046ed6bcc107774cc81dabb73493a1ad9ec0762783e3758613ee2984f",
    "relied on (app.sockets.handshakes): stores the environ, called by Engine.IO's connect event",
)
fence(
    "socketio.packet.Packet.encode",
    "513c45be75181da2e2b99a71f0876080a515f8dc0dfd99fd691ea2879637e8ea",
    "relied on by event_texts: an EVENT to '/' without id or binary is '2' + json.dumps([...])",
)
fence(
    "socketio.manager.Manager.emit",
    "566510ea2de39d65d97a964e64048aeb68009906ec6d6fc4681000fbd8f60d73",
    "bypassed by emit_each (no callback): one Engine.IO MESSAGE per emit, to each participant",
)
fence(
    "socketio.server.Server._send_eio_packet",
    "5fa452fb118c3565e780e4984b24bfb28c953b4c4c9097e176c4c5c243d21a28",
    "bypassed by emit_each through engineio.send_whole: a packet goes to eio.send_packet",
)
fence(
    "socketio.packet.Packet.decode",
    "61ad7904b539f4728d84d0db1a2051a762676a85ab5bacfaf83f3b3465190a8a",
    "relied on: a packet that does not decode raises ValueError (JSONDecodeError among them)",
)

#: What can go wrong decoding a packet or putting its binary attachments back in place.
UNDECODABLE = (ValueError, TypeError, KeyError, IndexError)
INVALID_NAMESPACE = {"message": "Invalid namespace"}


def end_session(server: Any, eio_sid: str, kind: str) -> None:
    """End the Engine.IO session under ``eio_sid`` at once (see ``engineio.end_session``)."""
    address = server.environ.get(eio_sid, {}).get("REMOTE_ADDR")
    session = server.eio.sockets.get(eio_sid)
    if session is not None:
        engineio.end_session(session, kind, address, after_next_poll=True)
    else:  # no Engine.IO transport: Flask-SocketIO's test client
        engineio.report(kind, eio_sid, address)
        server._handle_eio_disconnect(eio_sid, server.reason.TRANSPORT_ERROR)


def well_formed(pkt: Any) -> bool:
    """The checks socket.io-parser makes on what a client sends."""
    kind, data = pkt.packet_type, pkt.data
    if kind in (packet.EVENT, packet.BINARY_EVENT):
        return isinstance(data, list) and bool(data) and isinstance(data[0], str)
    if kind in (packet.ACK, packet.BINARY_ACK):
        return isinstance(data, list)
    # A CONNECT's payload is the handshake's ``auth``, of any shape: the connect handler refuses
    # one that is no object as ``token_missing``.
    return kind in (packet.CONNECT, packet.DISCONNECT)


def decoded(server: Any, eio_sid: str, data: Any) -> Any:
    """The complete packet that ``data`` makes, None while binary attachments are awaited, or
    ValueError/TypeError/... when it does not decode."""
    waiting = server._binary_packet.get(eio_sid)
    if waiting is not None:
        if not waiting.add_attachment(data):
            return None
        del server._binary_packet[eio_sid]
        pkt = waiting
    else:
        pkt = server.packet_class(encoded_packet=data)
        binary = pkt.packet_type in (packet.BINARY_EVENT, packet.BINARY_ACK)
        if binary and pkt.attachment_count:
            if not server.manager.sid_from_eio_sid(eio_sid, pkt.namespace or "/"):
                raise ValueError("binary packet before CONNECT")
            server._binary_packet[eio_sid] = pkt
            return None
    if not well_formed(pkt):
        raise ValueError("not a packet a client sends")
    return pkt


def handle_eio_message(self: Any, eio_sid: str, data: Any) -> None:
    """``Server._handle_eio_message`` (5.x): each packet decoded and checked, then dispatched; a
    packet that fails ends the session at once."""
    if eio_sid not in self.environ:  # its Socket.IO side is gone (an ended session)
        return
    try:
        pkt = decoded(self, eio_sid, data)
    except UNDECODABLE:
        end_session(self, eio_sid, "socketio_packet")
        return
    if pkt is None:
        return
    kind = pkt.packet_type
    if kind == packet.CONNECT:
        self._handle_connect(eio_sid, pkt.namespace, pkt.data)
    elif kind == packet.DISCONNECT:
        self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
    elif kind in (packet.EVENT, packet.BINARY_EVENT):
        self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
    else:
        self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)


_upstream_handle_connect: Any = socketio.Server._handle_connect


def serves(server: Any, namespace: str) -> bool:
    """Whether ``namespace`` has a handler (python-socketio's own test in ``_handle_connect``)."""
    return (
        namespace in server.handlers
        or namespace in server.namespace_handlers
        or server.namespaces == "*"
        or namespace in server.namespaces
    )


def handle_connect(self: Any, eio_sid: str, namespace: str | None, data: Any) -> None:
    """``Server._handle_connect``; a namespace nobody serves is refused with
    ``{"message": "Invalid namespace"}`` and ends the session."""
    namespace = namespace or "/"
    if serves(self, namespace):
        _upstream_handle_connect(self, eio_sid, namespace, data)
        manager = self.manager
        if isinstance(manager, IndexedRooms) and manager.on_connected:
            sid = manager.sid_from_eio_sid(eio_sid, namespace)  # type: ignore[attr-defined]
            then = manager.on_connected.pop(sid, None) if sid is not None else None
            if then is not None:
                then()
        return
    refusal = self.packet_class(packet.CONNECT_ERROR, data=INVALID_NAMESPACE, namespace=namespace)
    self._send_packet(eio_sid, refusal)
    end_session(self, eio_sid, "unknown_namespace")


def install() -> None:
    """Before the Socket.IO server is made (it binds ``_handle_eio_message`` to Engine.IO's
    message event when constructed); ``create_app`` calls this (idempotent)."""
    replace(socketio.Server, "_handle_eio_message", handle_eio_message)
    replace(socketio.Server, "_handle_connect", handle_connect)


class PendingSids(dict[str, None]):
    """A namespace's pending connects (or disconnects) in order, as python-socketio's list is
    used (``append``, ``in``, ``remove``, ``len``), with ``in`` a lookup, not a scan: hundreds of
    sockets connecting at once made every ``is_connected`` read them all (3.5 % of a connect
    burst's CPU, bench/PROFILE.md), and a mass disconnect was quadratic."""

    def append(self, sid: str) -> None:
        self[sid] = None

    def remove(self, sid: str) -> None:
        del self[sid]


class PendingByNamespace(dict[str, PendingSids]):
    """``pending_connect`` / ``pending_disconnect``: the list python-socketio assigns to a
    namespace is kept as ``PendingSids``."""

    def __setitem__(self, namespace: str, sids: Any) -> None:
        super().__setitem__(namespace, cast(PendingSids, PendingSids.fromkeys(sids)))


class IndexedRooms:
    """Mixin for a python-socketio manager (before it in the bases): the rooms of each client,
    and the pending connects and disconnects by sid (``PendingByNamespace``)."""

    rooms: dict[str, dict[Any, Any]]
    callbacks: dict[str, Any]
    pending_connect: PendingByNamespace
    pending_disconnect: PendingByNamespace
    server: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending_connect = PendingByNamespace()
        self.pending_disconnect = PendingByNamespace()
        #: Sockets whose connect replay is under way, with the pushes ``emit_each`` held for
        #: them meanwhile (``hold_pushes``).
        self.held: dict[str, list[tuple[str, eio_packet.Packet]]] = {}
        #: What to run right after a socket's CONNECT packet is sent (``when_connected``).
        self.on_connected: dict[str, Callable[[], None]] = {}

    def when_connected(self, sid: str, then: Callable[[], None]) -> None:
        """Run ``then`` once the connect handler of ``sid`` has returned and its CONNECT packet
        is sent (``handle_connect``); not at all if the handshake is refused. Emits of the
        handler itself go out before the CONNECT, which a client reading packets in order
        would see before it is connected (the JS client buffers them)."""
        self.on_connected[sid] = then

    def hold_pushes(self, sid: str) -> None:
        """Keep ``emit_each``'s pushes to ``sid`` until ``release_pushes``: a socket in its
        room gets live pushes while its replay is read, and a newer id ahead of the replayed
        ones would make a client that saves the newest id seen as ``lastId`` skip them."""
        self.held.setdefault(sid, [])

    def release_pushes(self, sid: str) -> None:
        """Send what was held for ``sid`` in order, then stop holding; pushes that arrive
        while it is sent queue behind it."""
        waiting = self.held.get(sid)
        if waiting is None:
            return
        send = self.server._send_eio_packet
        while waiting:
            eio_sid, pkt = waiting.pop(0)
            send(eio_sid, pkt)
        del self.held[sid]

    def _client_rooms(self) -> dict[tuple[str, str], set[Any]]:
        index: dict[tuple[str, str], set[Any]] | None = self.__dict__.get("_rooms_by_client")
        if index is None:
            index = self.__dict__["_rooms_by_client"] = {}
        return index

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)  # type: ignore[misc]
        self._client_rooms().setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)  # type: ignore[misc]
        index = self._client_rooms()
        joined = index.get((namespace, sid))
        if joined is not None:
            joined.discard(room)
            if not joined:
                del index[(namespace, sid)]

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        return [room for room in self._client_rooms().get((namespace, sid), ()) if room is not None]

    def emit_each(self, event: str, emits: Sequence[Emit], namespace: str = "/") -> None:
        """``emit(event, e.data, namespace, room=e.room, skip_sid=e.skip_sid)`` for each of
        ``emits`` in order, to this process's sockets: the packets ``Manager.emit`` sends, each
        encoded once per shape (``event_texts``)."""
        if namespace not in self.rooms:
            return
        server = self.server
        try:
            if any(e.data is None or type(e.data) is tuple for e in emits):
                raise TypeError("no argument, or several: python-socketio's way")
            texts = event_texts(server.packet_class.json.dumps, event, [e.data for e in emits])
        except TypeError:  # binary parts too
            for e in emits:
                socketio.Manager.emit(self, event, e.data, namespace, e.room, e.skip_sid)
            return
        send = server._send_eio_packet
        eio = server.eio
        direct = _sends_upstream(server) and not eio.logger.isEnabledFor(logging.INFO)
        send_whole = engineio.send_whole
        get_participants = self.get_participants  # type: ignore[attr-defined]
        held = self.held
        for e, text in zip(emits, texts, strict=True):
            pkt = eio_packet.Packet(eio_packet.MESSAGE, text)
            frame = None
            for sid, eio_sid in get_participants(namespace, e.room):
                if sid == e.skip_sid:
                    continue
                if held and sid in held:
                    held[sid].append((eio_sid, pkt))
                    continue
                if direct:
                    if frame is None:
                        frame = engineio.websocket_frame(pkt.encode())
                    if send_whole(eio, eio_sid, frame):
                        continue
                send(eio_sid, pkt)

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """python-socketio's ``basic_disconnect`` (5.x), with the rooms taken from the index."""
        if namespace not in self.rooms:
            return
        for room in list(self._client_rooms().get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        self.held.pop(sid, None)  # a socket refused or gone: nothing to hold or release for it
        self.on_connected.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]


def _sends_upstream(server: Any) -> bool:
    """Whether ``server``'s packets go the upstream way, ``_send_eio_packet`` to Engine.IO's
    ``send_packet`` (not a subclass's own), which ``engineio.send_whole`` stands for. With
    Engine.IO's logger at INFO, ``Socket.send`` logs each packet: that path is kept too."""
    return (
        type(server)._send_eio_packet is socketio.Server._send_eio_packet
        and type(server.eio).send_packet is engineio_server.Server.send_packet
    )


class IndexedManager(IndexedRooms, socketio.Manager):  # type: ignore[misc]
    """The in-process manager (no message queue), with the index."""


# ---- many emits at once: one encode per packet shape ----------------------------------------
# A batch's notifications differ in their id and recipient only; python-socketio's
# ``Manager.emit`` makes a Packet for each (walking the payload for binary parts) and encodes it
# with ``json.dumps``. ``event_texts`` encodes the packets through ``json_texts.shaped_texts``:
# the same text ``Packet.encode`` makes (tests/unit/test_event_texts.py compares them).


class Emit(NamedTuple):
    """One emit of ``emit_each``: ``data`` to the sockets of ``room`` but ``skip_sid``."""

    data: Any
    room: Any  # a room name, a list of them, or None (everyone), as python-socketio takes it
    skip_sid: str | None = None


def event_text(dumps: Any, event: str, data: Any) -> str:
    """``Packet(EVENT, data=[event, data], namespace="/").encode()`` for JSON data."""
    text: str = dumps([event, data], separators=(",", ":"))
    return str(packet.EVENT) + text


def event_texts(dumps: Any, event: str, payloads: Sequence[Any]) -> list[str]:
    """The Socket.IO EVENT packet text of ``event`` with each payload (``event_text``), the
    payloads that share a shape encoded once (``json_texts.shaped_texts``). Raises TypeError, as
    ``json.dumps`` does, for what JSON cannot carry (bytes: the caller sends those
    python-socketio's way, with attachments)."""
    return shaped_texts(
        lambda data: event_text(dumps, event, data), dumps, slot_texts(dumps), payloads
    )


def slot_texts(dumps: Any) -> ValueTexts:
    """The JSON text of a slot's value by its type: ``dumps`` itself, or for ``json.dumps`` with
    its defaults what it calls (its C string encoder, ``int.__repr__``)."""
    if dumps is not json.dumps:
        return dict.fromkeys(SLOT_TYPES, dumps)
    return json_value_texts()
