"""The message queue's Redis connections are bounded: a burst of publishers (read receipts,
disconnects and deliveries from many greenlets at once) waits for one of its ``CONNECTIONS``
instead of opening a connection each (python-socketio's ``Redis.from_url`` pool has no bound)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis

from app.message_queue import build
from app.patches.socketio_redis import CONNECTIONS
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.integration, pytest.mark.mariadb]


def connections_named(name: str) -> int:
    """The Redis server's count of client connections that carry ``name`` (the manager's
    own, whatever other apps of this test process hold or open meanwhile)."""
    with redis.Redis.from_url(REDIS_URL) as client:
        return sum(1 for entry in client.client_list() if entry["name"] == name)


def test_a_burst_of_publishers_shares_the_message_queues_bounded_pool(
    make_app: Callable[..., Any],
) -> None:
    app = make_app(MESSAGE_QUEUE="1")
    manager: Any = build(app)
    name = f"mq-pool-{uuid.uuid4().hex[:12]}"
    manager.redis_options["client_name"] = name
    manager._redis_connect()
    start = threading.Barrier(24)
    peaks: list[int] = []

    def publish() -> None:
        start.wait(5)
        for _ in range(20):
            manager._publish({"method": "noop"})

    workers = [threading.Thread(target=publish) for _ in range(24)]
    for worker in workers:
        worker.start()
    while any(worker.is_alive() for worker in workers):
        peaks.append(connections_named(name))
    for worker in workers:
        worker.join()
    manager.redis.close()
    manager.redis.connection_pool.disconnect()
    assert 1 <= max(peaks) <= CONNECTIONS, peaks
