"""A diagnostic: every time one greenlet held the gevent loop for ``LOOP_BLOCK_LOG_MS`` or more.

Off unless the environment sets ``LOOP_BLOCK_LOG_MS`` (the worker installs it, gunicorn_worker.py;
``bench/one_scenario.sh`` passes it through). A ``greenlet.settrace`` hook times each stretch
between two switches, wall and CPU (``time.thread_time``: a stretch whose wall time is far over
its CPU time was the process waiting for a core, not work), and keeps those over the threshold
with where the greenlet stood when it gave the loop back (the innermost frames of ``app/``, or
the innermost frame). The hub's own stretches count only by their CPU time (its wall time is
mostly the wait for I/O). The hook only appends to a deque: it runs inside every switch, where
logging (a lock) could switch again; a background task logs them once a second as ``loop_block``
lines, which ``bench/gc_align.py`` counts per latency level beside the GC pauses (a collection
inside a stretch is counted in both).

It costs about 1.5 us per switch (``thread_time`` is a system call): for measuring, not serving.
"""

from __future__ import annotations

import logging
import os
import sysconfig
import time
from collections import deque
from types import FrameType
from typing import Any, NamedTuple

import greenlet  # type: ignore[import-untyped]
from gevent.hub import Hub

from app.observability.logging import FIELDS

log = logging.getLogger(__name__)
#: Environment variable with the threshold in ms; unset or 0: off.
ENV = "LOOP_BLOCK_LOG_MS"


class Block(NamedTuple):
    at: float  # time.time() when the stretch began
    seconds: float
    cpu_seconds: float
    where: str


#: Where library code lives (its frames are skipped in ``where``).
LIBRARIES = tuple({sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], "<frozen"})


def where_of(frame: FrameType | None, depth: int = 2) -> str:
    """The innermost ``depth`` frames of our code (``file:function``; not the standard library's,
    an installed package's, nor a compiled module's, whose paths are relative), else the
    innermost frame."""
    found: list[str] = []
    first = None
    while frame is not None and len(found) < depth:
        code = frame.f_code
        name = f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_name}"
        first = first or name
        path = code.co_filename
        if path.startswith("/") and not path.startswith(LIBRARIES) and "site-packages" not in path:
            found.append(name)
        frame = frame.f_back
    return " < ".join(found) if found else (first or "?")


class LoopWatch:
    """The ``greenlet.settrace`` hook and what it kept (see the module doc)."""

    def __init__(self, threshold_ms: float, keep: int = 4096) -> None:
        self.threshold = threshold_ms / 1000
        self.blocks: deque[Block] = deque(maxlen=keep)
        self._since = time.perf_counter()
        self._cpu_since = time.thread_time()

    def __call__(self, event: str, args: Any) -> None:
        if event not in ("switch", "throw"):
            return
        now, cpu = time.perf_counter(), time.thread_time()
        wall, spent = now - self._since, cpu - self._cpu_since
        self._since, self._cpu_since = now, cpu
        if spent < self.threshold and (wall < self.threshold or isinstance(args[0], Hub)):
            return
        origin = args[0]
        if isinstance(origin, Hub):
            where = "hub"
        elif origin.gr_frame is None:  # it ended (or never started): what it ran
            run = getattr(origin, "_run", None) or getattr(origin, "run", None)
            where = f"ended {getattr(run, '__qualname__', type(origin).__name__)}"
        else:
            where = where_of(origin.gr_frame)
        self.blocks.append(Block(time.time() - wall, wall, spent, where))

    def drain(self) -> list[Block]:
        drained = []
        while self.blocks:
            drained.append(self.blocks.popleft())
        return drained

    def log(self) -> None:
        for block in self.drain():
            log.warning(
                "loop held %.1f ms (%.1f ms CPU) by %s",
                block.seconds * 1000,
                block.cpu_seconds * 1000,
                block.where,
                extra={
                    FIELDS: {
                        "type": "loop_block",
                        "started": round(block.at, 4),
                        "duration_ms": round(block.seconds * 1000, 2),
                        "cpu_ms": round(block.cpu_seconds * 1000, 2),
                        "where": block.where,
                    }
                },
            )

    def run(self, sleep: Any) -> None:
        """The logging loop (a background task)."""
        while True:
            sleep(1.0)
            self.log()


def threshold_ms() -> float:
    """``LOOP_BLOCK_LOG_MS`` from the environment; 0 when unset, empty or not a number."""
    try:
        return max(0.0, float(os.environ.get(ENV) or 0))
    except ValueError:
        return 0.0


def install(sleep: Any, spawn: Any) -> LoopWatch | None:
    """Hook every switch and start the logging loop, when ``LOOP_BLOCK_LOG_MS`` asks for it."""
    threshold = threshold_ms()
    if not threshold:
        return None
    watch = LoopWatch(threshold)
    greenlet.settrace(watch)
    spawn(watch.run, sleep)
    return watch
