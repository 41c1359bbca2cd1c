"""The garbage-collection policy: when it freezes, and that pauses are recorded."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

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
        del cycles  # and then it left
        frozen_before = gc.get_freeze_count()
        collect_and_freeze("freeze")
        assert gc.get_freeze_count() - frozen_before < 100  # the 100 dead cycles were freed
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
