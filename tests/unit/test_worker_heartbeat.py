"""The worker's heartbeat to gunicorn's arbiter: every ``HEARTBEAT_SECONDS`` (not every second),
and a signal still ends its wait at once."""

from __future__ import annotations

import os
import time
from typing import Any

import gevent
import pytest

import gunicorn_worker
from gunicorn_worker import Worker

pytestmark = pytest.mark.unit


class Tmp:
    def __init__(self) -> None:
        self.beats: list[float] = []

    def notify(self) -> None:
        self.beats.append(time.monotonic())


def idle_worker(monkeypatch: Any) -> tuple[Worker, Tmp]:
    monkeypatch.setattr(gunicorn_worker, "HEARTBEAT_SECONDS", 2.0, raising=False)
    worker = Worker.__new__(Worker)  # no arbiter, sockets or app: notify's part only
    worker.alive = True
    worker.tmp = tmp = Tmp()
    worker.ppid = os.getppid()
    return worker, tmp


def test_the_heartbeat_loop_beats_once_per_heartbeat_and_leaves_on_sigterm(
    monkeypatch: Any,
) -> None:
    worker, tmp = idle_worker(monkeypatch)

    def loop() -> None:  # gunicorn's GeventWorker.run, its heartbeat part
        while worker.alive:
            worker.notify()
            gevent.sleep(1.0)

    started = time.monotonic()
    running = gevent.spawn(loop)
    gevent.sleep(2.5)
    assert len(tmp.beats) == 2  # at 0 and 2 s (gunicorn's own pace: 3, at 0, 1 and 2 s)
    worker.handle_exit(15, None)
    running.join(timeout=1.5)
    assert running.dead
    assert time.monotonic() - started < 2.5 + 1.2  # woken at once, then the loop's 1 s sleep
    worker.notify()  # the graceful-shutdown loop's: no wait once the worker is stopping
    assert len(tmp.beats) == 3
