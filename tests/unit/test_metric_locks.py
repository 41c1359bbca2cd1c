"""The metrics' values take a native lock, not gevent's, in a process patched by gevent (as
gunicorn's worker is): each is held around one read or write, never across a switch."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

PROBE = """
from gevent import monkey
monkey.patch_all()
import threading
from app.observability import metrics
value = metrics.NOTIFICATIONS_STORED.labels("probe")._value
print(type(threading.Lock()).__module__, type(value._lock).__module__)
"""


def test_values_take_a_native_lock_under_gevent() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == ["gevent.thread", "_thread"]
