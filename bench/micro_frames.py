"""CPU of one frame to each of 1,000 websockets (local socket pairs): h11m's ``FrameWriter`` (a
greenlet per wake-up) against ``DirectFrameWriter`` (the caller sends a frame the connection
takes whole).

.venv/bin/python -W ignore -m bench.micro_frames
"""

from __future__ import annotations

import gevent.monkey

gevent.monkey.patch_all()

import time  # noqa: E402

import gevent  # noqa: E402
import gevent.socket  # noqa: E402
from engineio import packet  # noqa: E402

from app.patches.engineio import DirectFrameWriter, FrameWriter, WriterQueue  # noqa: E402
from tests.unit.test_direct_frames import EngineIOWebSocket  # noqa: E402

TEXT = '2["new_notification",{"id":1234,"recipientId":"user-1","message":"bench:1"}]'


def once(writer_class: type[FrameWriter], pairs: list[tuple[object, object]]) -> float:
    queues = []
    for ours, _ in pairs:
        queue = WriterQueue()
        writer = writer_class(queue, EngineIOWebSocket(ours))
        queue.on_put = writer.wake
        queues.append(queue)
    started = time.thread_time()
    for queue in queues:
        queue.put(packet.Packet(packet.MESSAGE, data=TEXT))
    while any(queue.qsize() for queue in queues):
        gevent.sleep(0)
    spent = time.thread_time() - started
    for _, peer in pairs:
        peer.recv(65536)  # type: ignore[attr-defined]
    return spent


def main(sockets: int = 1000) -> None:
    pairs = [gevent.socket.socketpair() for _ in range(sockets)]
    for _ in range(3):
        upstream = once(FrameWriter, pairs)
        ours = once(DirectFrameWriter, pairs)
        print(
            f"{sockets} sockets, one frame each: FrameWriter {upstream * 1000:.1f} ms, "
            f"DirectFrameWriter {ours * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
