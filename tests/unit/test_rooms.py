"""The per-client room index: the same rooms as python-socketio's, found without a scan."""

from __future__ import annotations

from typing import Any

import pytest
import socketio

from app.patches.socketio import IndexedManager, IndexedRooms

pytestmark = pytest.mark.unit
NS = "/"


class NoScan(dict[Any, Any]):
    """A namespace's rooms that refuse to be copied: python-socketio's disconnect copies them."""

    def copy(self) -> dict[Any, Any]:
        raise AssertionError("the rooms of the namespace were copied and scanned")


def manager_with(clients: dict[str, list[str]]) -> IndexedManager:
    manager = IndexedManager()
    manager.set_server(socketio.Server())
    for sid, rooms in clients.items():
        manager.basic_enter_room(sid, NS, None, eio_sid=f"eio-{sid}")
        manager.basic_enter_room(sid, NS, sid)
        for room in rooms:
            manager.basic_enter_room(sid, NS, room)
    return manager


def test_a_disconnect_leaves_exactly_the_rooms_the_client_joined() -> None:
    manager = manager_with({"a": ["user:alice"], "b": ["user:alice"], "c": ["user:carol"]})
    manager.rooms[NS] = NoScan(manager.rooms[NS])
    assert sorted(manager.get_rooms("a", NS)) == ["a", "user:alice"]
    manager.basic_disconnect("a", NS)
    assert "a" not in manager.rooms[NS]  # its own room is gone
    assert dict(manager.rooms[NS]["user:alice"]) == {"b": "eio-b"}
    assert "a" not in manager.rooms[NS][None] and "b" in manager.rooms[NS][None]
    manager.basic_disconnect("c", NS)
    assert "user:carol" not in manager.rooms[NS]  # emptied rooms are removed
    assert manager.get_rooms("c", NS) == []


def test_leaving_a_room_updates_the_index() -> None:
    manager = manager_with({"a": ["user:alice", "extra"]})
    manager.basic_leave_room("a", NS, "extra")
    assert sorted(manager.get_rooms("a", NS)) == ["a", "user:alice"]
    manager.basic_disconnect("a", NS)
    assert NS not in manager.rooms or manager.rooms[NS] == {}


def test_the_message_queue_manager_has_the_index_too() -> None:
    from app.message_queue import RoutedRedisManager

    assert issubclass(RoutedRedisManager, IndexedRooms)
