"""Sockets and files a unit test opened, closed after it (unclosed, they warn when collected):
a test appends to ``OPENED``; its module imports ``close_what_was_opened`` to use it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

OPENED: list[Any] = []


@pytest.fixture(autouse=True)
def close_what_was_opened() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()
