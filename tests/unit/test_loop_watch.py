"""The loop-block diagnostic (``app.loop_watch``) and the GC pauses' CPU time beside it."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import gevent
import greenlet  # type: ignore[import-untyped]
import pytest

from app import loop_watch
from app.gc_policy import PauseRecorder
from app.loop_watch import LoopWatch

pytestmark = pytest.mark.unit


@pytest.fixture
def watch() -> Iterator[LoopWatch]:
    watching = LoopWatch(threshold_ms=10)
    previous = greenlet.settrace(watching)
    try:
        yield watching
    finally:
        greenlet.settrace(previous)


def busy(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


def holds_the_loop() -> None:
    gevent.sleep(0)
    busy(0.03)
    gevent.sleep(0)


def yields_often() -> None:
    for _ in range(20):
        busy(0.001)
        gevent.sleep(0)


def test_a_greenlet_holding_the_loop_is_recorded_with_where_it_gave_it_back(
    watch: LoopWatch,
) -> None:
    gevent.joinall([gevent.spawn(holds_the_loop), gevent.spawn(yields_often)])
    blocks = watch.drain()
    assert len(blocks) == 1, blocks
    block = blocks[0]
    assert 0.03 <= block.seconds < 0.5 and block.cpu_seconds >= 0.02
    assert "holds_the_loop" in block.where
    assert watch.drain() == []


def test_an_idle_wait_in_the_hub_is_not_a_block(watch: LoopWatch) -> None:
    gevent.sleep(0.05)  # the hub waits 50 ms for the timer: wall time, no CPU
    assert [b for b in watch.drain() if b.where == "hub"] == []


def test_off_unless_the_environment_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loop_watch.ENV, raising=False)
    assert loop_watch.install(gevent.sleep, gevent.spawn) is None
    monkeypatch.setenv(loop_watch.ENV, "not a number")
    assert loop_watch.threshold_ms() == 0.0
    monkeypatch.setenv(loop_watch.ENV, "5")
    assert loop_watch.threshold_ms() == 5.0


def test_gc_pauses_carry_their_cpu_time_when_asked() -> None:
    for cpu in (False, True):
        recorder = PauseRecorder(cpu=cpu)
        gc.callbacks.append(recorder)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(recorder)
        (pause,) = recorder.drain()
        assert pause.generation == 2
        if cpu:
            assert pause.cpu_seconds is not None and 0 <= pause.cpu_seconds <= pause.seconds + 0.01
        else:
            assert pause.cpu_seconds is None
