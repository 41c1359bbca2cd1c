"""The garbage-collection policy: when it freezes, and that pauses are recorded."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from app.gc_policy import BURST, SETTLE, FreezePolicy, GcManager, PauseRecorder

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
