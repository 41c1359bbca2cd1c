"""The garbage-collection policy: when it freezes, and that pauses are recorded."""

from __future__ import annotations

import gc
import sys
import threading
import time
import weakref
from collections.abc import Iterator

import pytest

from app import gc_policy
from app.gc_policy import (
    BURST,
    SETTLE,
    FreezePolicy,
    GcManager,
    PauseRecorder,
    collect_and_freeze,
)

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def quiet_finalizers() -> Iterator[None]:
    """A full collection here also finalises what earlier tests left (sockets, greenlets); their
    finalisers' complaints are theirs, not this test's."""
    gc.collect()
    hook, sys.unraisablehook = sys.unraisablehook, lambda _unraisable: None
    try:
        yield
    finally:
        sys.unraisablehook = hook


def test_freezes_at_start_then_every_burst_of_sockets_even_while_it_lasts() -> None:
    policy = FreezePolicy()
    assert policy.decide(0) == "start"
    assert policy.decide(BURST - 1) is None  # not yet a burst
    assert policy.decide(BURST * 2) == "freeze"  # still moving: frozen as they come
    assert policy.decide(BURST * 4) == "freeze"
    assert policy.decide(BURST * 4 + 5) is None  # a few more are no burst


def test_refreezes_once_most_frozen_sockets_left_and_the_count_settled() -> None:
    policy = FreezePolicy()
    policy.decide(0)
    assert policy.decide(10_000) == "freeze"
    assert policy.decide(6_000) is None  # leaving, most are still here
    assert policy.decide(100) is None  # left, still moving
    assert [policy.decide(100) for _ in range(SETTLE - 1)] == [None] * (SETTLE - 1)
    assert policy.decide(100) == "refreeze"  # settled: their sessions can be collected now
    assert policy.frozen_at == 100
    assert policy.decide(100) is None


def test_refreezes_when_a_new_burst_follows_a_departure_before_the_count_settled() -> None:
    policy = FreezePolicy()
    policy.decide(0)
    assert policy.decide(5_000) == "freeze"
    assert policy.decide(2_000) is None  # leaving
    assert policy.decide(600) is None  # lowest: most are gone
    assert policy.decide(600 + BURST - 1) is None  # arriving, not yet a burst
    # The next burst comes before the count settled: the departed sessions are collected now
    # (their memory reused by the newcomers), not after the new burst passed the old count.
    assert policy.decide(600 + BURST) == "refreeze"
    assert policy.frozen_at == 600 + BURST
    assert policy.decide(600 + 2 * BURST) == "freeze"  # then frozen as they come


def test_a_burst_freeze_collects_the_cyclic_garbage_it_would_otherwise_freeze() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    gc.collect()
    gc.freeze()
    try:
        gc.disable()  # nothing collects before the freeze does
        cycles = [Node() for _ in range(100)]
        gc.collect(1)  # alive: moved to the old generation, as a session is after a second
        left = [weakref.ref(node) for node in cycles]
        del cycles  # and then it left
        collect_and_freeze("freeze")
        # The 100 dead cycles were freed, not frozen (a count of frozen objects would also
        # count what other threads of the test process allocated meanwhile).
        assert [ref for ref in left if ref() is not None] == []
    finally:
        gc.enable()
        gc.unfreeze()


def test_a_full_collection_is_timed_and_counted() -> None:
    recorder = PauseRecorder()
    gc.callbacks.append(recorder)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(recorder)
    pauses = recorder.drain()
    assert [p.generation for p in pauses] == [2]
    assert 0 < pauses[0].seconds < 5
    assert recorder.drain() == []


def test_the_check_freezes_and_drains_pauses_into_the_histogram() -> None:
    from app.observability.metrics import GC_PAUSES

    before = GC_PAUSES.labels(generation="2")._sum.get()
    manager = GcManager(lambda: 0, lambda _s: None, log_over_ms=0)
    manager.install()
    try:
        manager.check()  # the first check: collect and freeze
        assert gc.get_freeze_count() > 0
        assert GC_PAUSES.labels(generation="2")._sum.get() > before
    finally:
        gc.callbacks.remove(manager.recorder)
        gc.unfreeze()


class Stop(BaseException):
    """Ends the manager's loop (it outlives every Exception)."""


def test_a_quiet_loop_waits_for_a_socket_change_instead_of_checking_every_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gc_policy, "START_DELAY", 0.0)
    monkeypatch.setattr(gc_policy, "CHECK_INTERVAL", 0.05)
    monkeypatch.setattr(gc_policy, "IDLE_CHECK_INTERVAL", 5.0, raising=False)
    checks: list[float] = []
    sockets = [10]
    stopping = threading.Event()

    manager = GcManager(lambda: sockets[0], time.sleep, log_over_ms=0, freeze=False)
    drain = manager.recorder.drain

    def counted_drain() -> list[gc_policy.Pause]:  # once per check
        if stopping.is_set():
            raise Stop()
        checks.append(time.monotonic())
        return drain()

    manager.recorder.drain = counted_drain  # type: ignore[method-assign]
    loop = threading.Thread(target=lambda: pytest.raises(Stop, manager.run), daemon=True)
    loop.start()
    time.sleep(0.6)
    # Two checks (the first, and the one that found nothing moved), then a wait: the one-second
    # pace (here 0.05 s) would have made about 12.
    assert len(checks) <= 3
    sockets[0] = 11
    poked = time.monotonic()
    manager.poke()  # a connect
    time.sleep(0.3)
    assert checks[-1] > poked
    assert checks[-1] - poked < 0.05 + 0.1  # a check within CHECK_INTERVAL of the change
    stopping.set()
    manager.poke()
    loop.join(timeout=2)
    assert not loop.is_alive()
