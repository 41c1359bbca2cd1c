"""The message queue's Redis connections are bounded: a burst of publishers (read receipts,
disconnects and deliveries from many greenlets at once) waits for one of its ``CONNECTIONS``
instead of opening a connection each (python-socketio's ``Redis.from_url`` pool has no bound)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from app.message_queue import build
from app.patches.socketio_redis import CONNECTIONS
from tests.conftest import REDIS_URL
from tests.connection_budget import redis_connections

pytestmark = [pytest.mark.integration, pytest.mark.mariadb]


def own_redis_connections() -> int:
    return redis_connections({os.getpid()}, REDIS_URL)


def test_a_burst_of_publishers_shares_the_message_queues_bounded_pool(
    make_app: Callable[..., Any],
) -> None:
    app = make_app(MESSAGE_QUEUE="1")
    manager: Any = build(app)
    before = own_redis_connections()
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
        peaks.append(own_redis_connections() - before)
    for worker in workers:
        worker.join()
    manager.redis.close()
    manager.redis.connection_pool.disconnect()
    assert 1 <= max(peaks) <= CONNECTIONS, peaks
