"""CPU of one ``emit_each`` of 1,000 notifications to 1,000 idle websockets (local socket
pairs, each with its ``DirectFrameWriter``): each frame written by the pusher
(``engineio.send_whole``) against upstream's path (``Server.send_packet`` -> ``Socket.send`` ->
the queue's put -> the writer's wake -> its get), the frames the same. Best and median of 12
rounds, the two called in turn.

.venv/bin/python -W ignore -m bench.micro_push
"""

from gevent import monkey

monkey.patch_all()

import time  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

from app.patches import engineio  # noqa: E402
from app.patches.socketio import Emit  # noqa: E402
from tests.unit.test_direct_frames import Pushes  # noqa: E402
from tests.unit.test_event_texts import notification  # noqa: E402


def drain(peers: list[Any]) -> None:
    for peer in peers:
        peer.setblocking(False)
        try:
            while peer.recv(1 << 16):
                pass
        except BlockingIOError:
            pass


def main(recipients: int = 1000, rounds: int = 12) -> None:
    pushes = Pushes()
    peers = [pushes.connect(f"u{i}")[1] for i in range(recipients)]
    emits = [Emit(notification(i), f"user:u{i}") for i in range(recipients)]
    direct = engineio.send_whole
    ways = {"send_whole": direct, "upstream's path": lambda *_: False}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, way in ways.items():
            engineio.send_whole = way
            started = time.thread_time()
            pushes.server.manager.emit_each("new_notification", emits)
            gevent.sleep(0.01)  # a writer greenlet, if any, runs here
            times[name].append(1000 * (time.thread_time() - started))
            drain(peers)
    engineio.send_whole = direct
    for name, spent in times.items():
        spent.sort()
        print(f"{name}: {spent[0]:.1f} ms best, {spent[len(spent) // 2]:.1f} median")


if __name__ == "__main__":
    main()
