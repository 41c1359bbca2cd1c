"""The garbage-collection policy: when it freezes, and that pauses are recorded."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from app.gc_policy import BURST, FreezePolicy, GcManager, PauseRecorder

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


def test_freezes_at_start_then_after_a_burst_once_the_count_is_steady() -> None:
    policy = FreezePolicy()
    assert policy.decide(0) == "freeze"  # start-up
    assert policy.decide(BURST * 2) is None  # a burst in progress
    assert policy.decide(BURST * 4) is None
    assert policy.decide(BURST * 4) == "freeze"  # steady: the burst is over
    assert policy.decide(BURST * 4 + 5) is None  # a few more are no burst


def test_refreezes_after_most_frozen_sockets_left() -> None:
    policy = FreezePolicy()
    policy.decide(0)
    policy.decide(10_000)
    assert policy.decide(10_000) == "freeze"
    assert policy.decide(6_000) is None  # still leaving
    assert policy.decide(6_000) is None  # steady, but most are still here
    assert policy.decide(100) is None
    assert policy.decide(100) == "refreeze"  # their sessions can be collected now
    assert policy.frozen_at == 100


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
