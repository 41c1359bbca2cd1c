"""The per-client room index: the same rooms as python-socketio's, found without a scan; the
pending connects and disconnects, found without a scan."""

from __future__ import annotations

from typing import Any

import pytest
import socketio
from hypothesis import given, settings
from hypothesis import strategies as st

from app.patches.socketio import IndexedManager, IndexedRooms, PendingSids
from tests.conftest import REPRODUCIBLE

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


# ---- pending connects and disconnects, looked up by sid ---------------------------------------

OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["pre_connect", "connect", "pre_disconnect", "disconnect"]),
        st.integers(0, 5),
    ),
    max_size=40,
)


def answers(manager: Any, steps: list[tuple[str, int]]) -> list[Any]:
    """Each step's effect as seen through python-socketio's own questions."""
    manager.set_server(socketio.Server())
    sids: dict[int, str] = {}
    seen = []
    for step, n in steps:
        if step == "pre_connect":
            sid = manager.pre_connect(f"eio-{n}", NS)
            if sid is not None:
                sids[n] = sid
        elif n in sids:
            try:
                getattr(manager, "basic_disconnect" if step == "disconnect" else step)(sids[n], NS)
            except (KeyError, ValueError) as error:  # a step out of order: upstream's own errors
                seen.append(type(error).__name__)
        seen.append(
            [(manager.is_pre_connected(s, NS), manager.is_connected(s, NS)) for s in sids.values()]
        )
    return seen


@settings(REPRODUCIBLE, max_examples=300)
@given(OPERATIONS)
def test_pending_sids_answer_as_python_socketios_lists(steps: list[tuple[str, int]]) -> None:
    assert answers(IndexedManager(), steps) == answers(socketio.Manager(), steps)


def test_a_pending_sid_is_found_without_a_scan() -> None:
    manager = IndexedManager()
    manager.set_server(socketio.Server())
    sids = [manager.pre_connect(f"eio-{n}", NS) for n in range(3)]
    pending = manager.pending_connect[NS]
    assert isinstance(pending, PendingSids) and list(pending) == sids
    manager.connect(sids[1], NS)
    manager.pre_disconnect(sids[0], NS)
    assert isinstance(manager.pending_disconnect[NS], PendingSids)
    assert [manager.is_connected(s, NS) for s in sids] == [False, True, False]
