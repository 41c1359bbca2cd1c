"""Keeping a burst of hits inside one window of a sliding window counter."""

from __future__ import annotations

import time


def in_one_window(seconds: float = 60, room: float = 10) -> None:
    """Wait, if need be, until a limit's window of ``seconds`` has ``room`` seconds left: the
    sliding window counter weighs the window before by the time left in it, so hits across a
    boundary pass beyond the limit as that weight falls (``services.limit_storage``)."""
    left = seconds - time.time() % seconds
    if left < room:
        time.sleep(left + 0.1)
