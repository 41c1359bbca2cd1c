"""python-socketio overrides: rooms indexed by client as well as by room, so a disconnect costs
what the client joined.

python-socketio finds a leaving client's rooms by copying and scanning every room of the
namespace. Here each client is in three (every client's own, ``None`` for all clients, and its
user's room), but a process with 10,000 sockets has 20,000 rooms: each disconnect copied and
scanned all of them, and a mass disconnect (a balancer restart, a network blip) kept the worker
busy past gunicorn's 30 s timeout, which then killed it (found by bench/run.sh at 10,000
sockets). With the index a disconnect touches the client's own rooms only.
"""

from __future__ import annotations

from typing import Any

import socketio

from app.patches.fence import fence

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


class IndexedRooms:
    """Mixin for a python-socketio manager (before it in the bases): the rooms of each client."""

    rooms: dict[str, dict[Any, Any]]
    callbacks: dict[str, Any]
    pending_connect: dict[str, list[str]]
    pending_disconnect: dict[str, list[str]]

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

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """python-socketio's ``basic_disconnect`` (5.x), with the rooms taken from the index."""
        if namespace not in self.rooms:
            return
        for room in list(self._client_rooms().get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]


class IndexedManager(IndexedRooms, socketio.Manager):  # type: ignore[misc]
    """The in-process manager (no message queue), with the index."""
