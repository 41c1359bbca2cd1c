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
- Whenever there are ``BURST`` sockets more than at the last freeze (during a connect burst
  too): a full collection, then freeze, so the new sockets' long-lived objects leave the walked
  generations as they come, and a full collection during and after the burst walks only what
  came since. That collection is short: frozen objects are not walked, so it walks what was
  made since the previous freeze (a second or so), and garbage in cycles made meanwhile is
  freed instead of frozen for good (a collection of the young generations only left it in the
  old one, to be frozen).
- After a mass departure (the count fell below half of what it was at the last freeze), once
  the count settled (``SETTLE`` steady checks) or a new burst began (``BURST`` sockets more
  than its lowest since): unfreeze, collect, freeze. Frozen objects are never collected, so the
  sessions of sockets that left, if they sit in reference cycles, would otherwise stay in
  memory, and the new burst could not reuse it; so would cyclic garbage frozen with a burst.
  This is the one long pause, once after most sockets left.

Thresholds (``gc.set_threshold``) stay CPython's (700, 10, 10), stated in ``THRESHOLDS``: a higher
generation-0 threshold measured no better (bench/PROFILE.md); what the tail needed was fewer
objects to walk, not fewer walks.

Pauses are timed by a ``gc.callbacks`` hook, which only appends to a deque: it runs inside an
allocation anywhere in the program, where taking a lock (logging's, prometheus-client's) could
switch greenlets in the middle of a collection. The one-second check drains it into the
``notify_gc_pause_seconds`` histogram and logs, at WARNING, each pause over ``GC_PAUSE_LOG_MS``.

A quiet check (the socket count as at the check before, no pause to drain, no departure
settling) is followed by a wait for the next connect or disconnect (``GcManager.poke``, from
``app.sockets.sessions``), at most ``IDLE_CHECK_INTERVAL`` s, then the one-second pace again: the
check after a change comes at most a second after it, as before, and an idle process does not
wake every second for nothing (an idle wake-up counts in the summed CPU of many processes,
bench/PROFILE.md, issue 12). The pauses of an idle process are drained that much later.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from app import loop_watch
from app.observability import metrics
from app.observability.logging import FIELDS

log = logging.getLogger(__name__)

THRESHOLDS = (700, 10, 10)
START_DELAY = 1.0
CHECK_INTERVAL = 1.0
#: The longest wait after a quiet check (woken earlier by a connect or disconnect).
IDLE_CHECK_INTERVAL = 10.0
#: Sockets more than at the last freeze that make a burst worth freezing.
BURST = 200
#: A count that moved by less than this (or 1 %) since the previous check is steady.
QUIET = 20
#: Steady checks after a mass departure before the refreeze: sockets still closing would be
#: frozen again (2,800 closing sockets a second after the count fell: a 570 ms collection
#: that froze most of them again).
SETTLE = 5


class Pause(NamedTuple):
    at: float  # time.time() when the collection started
    generation: int
    seconds: float
    collected: int
    #: Its CPU time, when measured (``cpu=True``); else None.
    cpu_seconds: float | None = None


class PauseRecorder:
    """``gc.callbacks`` hook: the start and length of every collection, kept until drained.
    With ``cpu`` (the loop-block diagnostic is on, ``app.loop_watch``) also its CPU time: a
    pause far longer than its CPU time was the process waiting for a core."""

    def __init__(self, keep: int = 4096, cpu: bool = False) -> None:
        self.pauses: deque[Pause] = deque(maxlen=keep)
        self.cpu = cpu
        self._started = 0.0
        self._started_at = 0.0
        self._cpu_started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_at = time.time()
            if self.cpu:
                self._cpu_started = time.thread_time()
            self._started = time.perf_counter()
        else:
            seconds = time.perf_counter() - self._started
            cpu = time.thread_time() - self._cpu_started if self.cpu else None
            self.pauses.append(
                Pause(self._started_at, info["generation"], seconds, info["collected"], cpu)
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
        self.steady = 0  # checks in a row the count stayed steady
        self.low = 0  # the lowest count since the last freeze

    def decide(self, sockets: int) -> str | None:
        """``"start"``, ``"freeze"``, ``"refreeze"`` (unfreeze, collect, freeze) or None."""
        previous, self.previous = self.previous, sockets
        moving = abs(sockets - previous) >= max(QUIET, previous // 100)
        self.steady = 0 if moving else self.steady + 1
        self.low = min(self.low, sockets)
        if self.frozen_at is None:
            return self._frozen(sockets, "start")
        departed = self.frozen_at >= BURST and self.low < self.frozen_at // 2
        if departed and (self.steady >= SETTLE or sockets - self.low >= BURST):
            # Settled, or a new burst began after the departure (the bench's next level, a
            # reconnect wave): the departed sessions' memory is reused only if collected now.
            return self._frozen(sockets, "refreeze")
        if sockets - self.frozen_at >= BURST:
            # During a burst too: what the new sockets hold leaves the walked generations now,
            # not after the burst (a 2,000-socket burst otherwise had 150-270 ms full
            # collections every few seconds while it lasted).
            return self._frozen(sockets, "freeze")
        return None

    def settling(self) -> bool:
        """After a mass departure, before the refreeze: the steady checks are being counted."""
        return (
            self.frozen_at is not None
            and self.frozen_at >= BURST
            and self.low < self.frozen_at // 2
        )

    def _frozen(self, sockets: int, action: str) -> str:
        self.frozen_at = self.low = sockets
        return action


def collect_and_freeze(action: str) -> None:
    """``start``, ``freeze``: collect (what was frozen before is not walked), freeze.
    ``refreeze``: unfreeze, collect, freeze, so what departed sockets left in cycles is freed."""
    if action == "refreeze":
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
        self.recorder = PauseRecorder(cpu=loop_watch.threshold_ms() > 0)
        self.policy = FreezePolicy()
        self._changed = threading.Event()  # gevent's under the worker's monkey patching
        self._count: int | None = None  # the socket count at the previous check

    def install(self) -> None:
        gc.set_threshold(*THRESHOLDS)
        gc.callbacks.append(self.recorder)

    def poke(self) -> None:
        """A socket came or left: a quiet loop resumes its one-second pace."""
        self._changed.set()

    def run(self) -> None:
        """The loop (a background task): first check after START_DELAY, then every second; after
        a quiet check, the next second's check waits for a poke (IDLE_CHECK_INTERVAL at most)."""
        self.sleep(START_DELAY)
        while True:
            self._changed.clear()
            quiet = False
            try:
                quiet = self.check()
            except Exception:  # the loop must outlive any one failure
                log.exception("gc check failed")
            if quiet:
                self._changed.wait(IDLE_CHECK_INTERVAL)
            self.sleep(CHECK_INTERVAL)

    def check(self) -> bool:
        """One check; whether it was quiet (nothing moved, drained or decided)."""
        sockets = self.socket_count()
        unchanged, self._count = sockets == self._count, sockets
        action = self.policy.decide(sockets) if self.freeze else None
        if action is not None:
            collect_and_freeze(action)
            if log.isEnabledFor(logging.INFO):  # the count walks every frozen object
                log.info(
                    "gc: %s at %d sockets, %d objects frozen",
                    action,
                    self.policy.frozen_at,
                    gc.get_freeze_count(),
                )
        pauses = self.recorder.drain()
        if self.recorder.cpu and pauses:
            self.log_totals(pauses)
        for pause in pauses:
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
                            "cpu_ms": None
                            if pause.cpu_seconds is None
                            else round(pause.cpu_seconds * 1000, 2),
                        }
                    },
                )
        return unchanged and action is None and not pauses and not self.policy.settling()

    def log_totals(self, pauses: list[Pause]) -> None:
        """With the loop-block diagnostic on: every collection since the last check, summed per
        generation (count, wall ms, CPU ms), one ``gc_totals`` line (GC's share of the CPU)."""
        totals: dict[int, list[float]] = {}
        for pause in pauses:
            total = totals.setdefault(pause.generation, [0, 0.0, 0.0])
            total[0] += 1
            total[1] += pause.seconds * 1000
            total[2] += (pause.cpu_seconds or 0.0) * 1000
        fields = {
            f"gen{gen}": [n, round(wall, 2), round(cpu, 2)]
            for gen, (n, wall, cpu) in totals.items()
        }
        log.warning(
            "gc totals %s",
            fields,
            extra={FIELDS: {"type": "gc_totals", "started": round(pauses[0].at, 4), **fields}},
        )
