"""CPU of 1,000 emits to 1,000 one-socket rooms: python-socketio's ``Manager.emit`` each, against
``IndexedRooms.emit_each`` (one encode per packet shape). The Engine.IO sends are not made.

.venv/bin/python -m bench.micro_emit
"""

from __future__ import annotations

import time
from typing import Any

import socketio

from app.patches.socketio import Emit, IndexedManager
from tests.unit.test_event_texts import notification


class NoSends(socketio.Server):  # type: ignore[misc]
    def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        pass


def main(recipients: int = 1000, repeats: int = 10) -> None:
    manager = IndexedManager()
    manager.set_server(NoSends())
    for i in range(recipients):
        manager.basic_enter_room(f"s{i}", "/", None, eio_sid=f"e{i}")
        manager.basic_enter_room(f"s{i}", "/", f"user:user-{i}")
    emits = [Emit(notification(i), f"user:user-{i}") for i in range(recipients)]
    for _ in range(3):
        started = time.thread_time()
        for _ in range(repeats):
            for e in emits:
                socketio.Manager.emit(manager, "new_notification", e.data, "/", room=e.room)
        upstream = (time.thread_time() - started) / repeats
        started = time.thread_time()
        for _ in range(repeats):
            manager.emit_each("new_notification", emits)
        ours = (time.thread_time() - started) / repeats
        print(
            f"{recipients} emits: Manager.emit {upstream * 1000:.1f} ms, "
            f"emit_each {ours * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
