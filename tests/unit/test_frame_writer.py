"""The websocket writer that exists only while packets are queued sends what upstream's writer
sends: every packet in order, up to the None, then the close frame."""

from __future__ import annotations

import gevent
import pytest
from engineio import packet

from app.patches.engineio import FrameWriter, WriterQueue

pytestmark = pytest.mark.unit


class FakeWebSocket:
    """What FrameWriter calls on engineio's WebSocketWSGI; a send may block (a slow client)."""

    def __init__(self, block_sends: int = 0, fail: bool = False) -> None:
        self.sent: list[str | bytes] = []
        self.closed = 0
        self.block_sends = block_sends
        self.fail = fail

    def send(self, message: str | bytes) -> None:
        if self.fail:
            raise OSError("connection reset")
        if self.block_sends:
            self.block_sends -= 1
            gevent.sleep(0.01)
        self.sent.append(message)

    def close(self) -> None:
        self.closed += 1


def connect(ws: FakeWebSocket) -> tuple[WriterQueue, FrameWriter]:
    queue = WriterQueue()
    writer = FrameWriter(queue, ws)
    queue.on_put = writer.wake
    return queue, writer


def message(n: int) -> packet.Packet:
    return packet.Packet(packet.MESSAGE, data=f"m{n}")


def test_no_greenlet_while_idle_and_every_packet_in_order() -> None:
    ws = FakeWebSocket()
    queue, writer = connect(ws)
    assert not writer.running
    for n in range(3):
        queue.put(message(n))
    assert writer.running  # one greenlet for the three, not yet run
    gevent.sleep(0)
    assert ws.sent == ["4m0", "4m1", "4m2"]
    assert not writer.running and not writer.done  # gone until the next put
    queue.put(packet.Packet(packet.PING))
    gevent.sleep(0)
    assert ws.sent[-1] == "2"
    assert not writer.running and ws.closed == 0


def test_packets_queued_during_a_blocked_send_follow_it_in_order() -> None:
    ws = FakeWebSocket(block_sends=1)
    queue, writer = connect(ws)
    queue.put(message(0))
    gevent.sleep(0)  # the writer now waits inside the first send
    assert writer.running
    queue.put(message(1))
    queue.put(message(2))
    gevent.sleep(0.05)
    assert ws.sent == ["4m0", "4m1", "4m2"]
    assert not writer.running


def test_the_none_sends_what_came_before_then_closes_and_nothing_after() -> None:
    ws = FakeWebSocket()
    queue, writer = connect(ws)
    queue.put(packet.Packet(packet.CLOSE))
    queue.put(None)
    queue.put(message(9))  # after the close: never sent
    writer.wait_done()
    assert ws.sent == ["1"]
    assert ws.closed == 1 and writer.done and not writer.running
    gevent.sleep(0)
    assert ws.sent == ["1"]
    # every packet taken was marked done (close(wait=True) joins the queue): only the late one not
    assert queue.unfinished_tasks == 1 and queue.qsize() == 1


def test_a_failed_send_closes_the_websocket_once_and_the_writer_stops() -> None:
    ws = FakeWebSocket(fail=True)
    queue, writer = connect(ws)
    queue.put(message(0))
    queue.put(message(1))
    gevent.sleep(0)
    assert writer.done and ws.closed == 1 and ws.sent == []
    queue.put(message(2))
    assert not writer.running  # no greenlet for a closed websocket
    writer.wait_done()  # returns at once


def test_the_queue_answers_like_gevents() -> None:
    """FIFO, a non-blocking get on an empty queue, a blocking get woken by a put, a timeout,
    task_done and join: what engineio's poll(), send() and close(wait=True) use."""
    import gevent.queue

    for queue in (gevent.queue.JoinableQueue(), WriterQueue()):
        with pytest.raises(gevent.queue.Empty):
            queue.get(block=False)
        with pytest.raises(gevent.queue.Empty):
            queue.get(timeout=0.01)
        queue.put("a")
        queue.put("b")
        assert queue.qsize() == 2 and queue.queue[0] == "a"
        assert [queue.get(), queue.get(block=False)] == ["a", "b"]
        waiting = gevent.spawn(queue.get, timeout=5)
        gevent.sleep(0)
        queue.put("c")
        assert waiting.get(timeout=1) == "c"
        joining = gevent.spawn(queue.join)
        gevent.sleep(0)
        assert not joining.ready()  # three put, none marked done
        for _ in range(3):
            queue.task_done()
        assert joining.get(timeout=1) in (None, True)
        with pytest.raises(ValueError):
            queue.task_done()


def test_the_queue_is_a_tenth_of_gevents_in_memory() -> None:
    import tracemalloc

    import gevent.queue

    def size(make: object) -> float:
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            queues = [make() for _ in range(200)]  # type: ignore[operator]
            for queue in queues:
                queue.put(1)
                queue.get()
                queue.task_done()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        return sum(s.size_diff for s in after.compare_to(before, "filename")) / len(queues)

    assert size(WriterQueue) * 5 < size(gevent.queue.JoinableQueue)
