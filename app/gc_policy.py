"""Garbage collection managed for a long-running socket server: frozen after start-up and after
connect bursts, every pause measured.

CPython's full (generation 2) collection walks every tracked object. A worker holding 1,000
sockets has 130k-150k of them, almost all of them long-lived (modules, the app, each socket's
session, rooms, greenlets), and each full collection paused the worker 65-105 ms idle and
150-200 ms under load: the whole p99 tail of webhook -> client at 500/s (bench/PROFILE.md).
``gc.freeze()`` moves every object tracked so far into a permanent generation that collections
no longer walk, so a later full collection walks only what was made since.

The policy (``FreezePolicy``), checked once a second:

- ``START_DELAY`` seconds after the worker starts serving: one full collection (start-up
  garbage), then freeze.
- After a connect burst (at least ``BURST`` more sockets than at the last freeze, and the count
  steady, changed by less than ``QUIET`` since the previous check): collect, then freeze, so the
  new sockets' long-lived objects leave the walked generations too. One pause at the end of a
  burst instead of one per full collection for as long as they stay connected.
- After a mass departure (fewer than half the sockets of the last freeze, the count steady):
  unfreeze, collect, freeze. Frozen objects are never collected, so the sessions of sockets
  that left, if they sit in reference cycles, would otherwise stay in memory for good.

Thresholds (``gc.set_threshold``) stay CPython's (700, 10, 10), stated in ``THRESHOLDS``: a higher
generation-0 threshold measured no better (bench/PROFILE.md); what the tail needed was fewer
objects to walk, not fewer walks.

Pauses are timed by a ``gc.callbacks`` hook, which only appends to a deque: it runs inside an
allocation anywhere in the program, where taking a lock (logging's, prometheus-client's) could
switch greenlets in the middle of a collection. The one-second check drains it into the
``notify_gc_pause_seconds`` histogram and logs, at WARNING, each pause over ``GC_PAUSE_LOG_MS``.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from app.observability import metrics
from app.observability.logging import FIELDS

log = logging.getLogger(__name__)

THRESHOLDS = (700, 10, 10)
START_DELAY = 1.0
CHECK_INTERVAL = 1.0
#: Sockets more than at the last freeze that make a burst worth freezing.
BURST = 200
#: A count that moved by less than this (or 1 %) since the previous check is steady.
QUIET = 20


class Pause(NamedTuple):
    at: float  # time.time() when the collection started
    generation: int
    seconds: float
    collected: int


class PauseRecorder:
    """``gc.callbacks`` hook: the start and length of every collection, kept until drained."""

    def __init__(self, keep: int = 4096) -> None:
        self.pauses: deque[Pause] = deque(maxlen=keep)
        self._started = 0.0
        self._started_at = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_at = time.time()
            self._started = time.perf_counter()
        else:
            seconds = time.perf_counter() - self._started
            self.pauses.append(
                Pause(self._started_at, info["generation"], seconds, info["collected"])
            )

    def drain(self) -> list[Pause]:
        drained = []
        while self.pauses:
            drained.append(self.pauses.popleft())
        return drained


class FreezePolicy:
    """When to freeze: decided from the socket count alone (see the module doc)."""

    def __init__(self) -> None:
        self.frozen_at: int | None = None  # socket count at the last freeze
        self.previous = 0

    def decide(self, sockets: int) -> str | None:
        """``"freeze"``, ``"refreeze"`` (unfreeze first) or None, once per check."""
        previous, self.previous = self.previous, sockets
        if self.frozen_at is None:
            self.frozen_at = sockets
            return "freeze"
        if abs(sockets - previous) >= max(QUIET, previous // 100):
            return None  # still moving: wait for the burst to end
        if sockets - self.frozen_at >= BURST:
            self.frozen_at = sockets
            return "freeze"
        if self.frozen_at >= BURST and sockets < self.frozen_at // 2:
            self.frozen_at = sockets
            return "refreeze"
        return None


def collect_and_freeze(unfreeze_first: bool = False) -> None:
    if unfreeze_first:
        gc.unfreeze()
    gc.collect()
    gc.freeze()


class GcManager:
    """The recorder, the policy and the loop that runs them; one per serving process."""

    def __init__(
        self,
        socket_count: Callable[[], int],
        sleep: Callable[[float], Any],
        log_over_ms: float,
        freeze: bool = True,
    ) -> None:
        self.socket_count = socket_count
        self.sleep = sleep
        self.log_over = log_over_ms / 1000
        self.freeze = freeze
        self.recorder = PauseRecorder()
        self.policy = FreezePolicy()

    def install(self) -> None:
        gc.set_threshold(*THRESHOLDS)
        gc.callbacks.append(self.recorder)

    def run(self) -> None:
        """The loop (a background task): first check after START_DELAY, then every second."""
        self.sleep(START_DELAY)
        while True:
            try:
                self.check()
            except Exception:  # the loop must outlive any one failure
                log.exception("gc check failed")
            self.sleep(CHECK_INTERVAL)

    def check(self) -> None:
        action = self.policy.decide(self.socket_count()) if self.freeze else None
        if action is not None:
            collect_and_freeze(unfreeze_first=action == "refreeze")
            log.info(
                "gc: %s at %d sockets, %d objects frozen",
                action,
                self.policy.frozen_at,
                gc.get_freeze_count(),
            )
        for pause in self.recorder.drain():
            metrics.gc_paused(pause.generation, pause.seconds)
            if self.log_over and pause.seconds >= self.log_over:
                log.warning(
                    "gc pause %.1f ms, generation %d, %d collected",
                    pause.seconds * 1000,
                    pause.generation,
                    pause.collected,
                    extra={
                        FIELDS: {
                            "type": "gc_pause",
                            "started": round(pause.at, 4),
                            "generation": pause.generation,
                            "duration_ms": round(pause.seconds * 1000, 2),
                            "collected": pause.collected,
                        }
                    },
                )
