"""The metrics' values take a native lock, not gevent's, in a process patched by gevent (as
gunicorn's worker is): each is held around one read or write, never across a switch. A batch's
latency is observed in one step."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from prometheus_client import Histogram

from app.observability import metrics

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


def test_a_batch_observes_its_latency_once_for_all_of_its_notifications(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """1,000 notifications pushed together: 1,000 in the histogram's count and bucket, one
    step (``observe_many``), not 1,000 ``observe`` calls."""
    histogram = Histogram("probe_latency_seconds", "probe", buckets=(0.01, 0.1), registry=None)
    monkeypatch.setattr(metrics, "DELIVERY_LATENCY", histogram)
    calls: list[float] = []
    monkeypatch.setattr(Histogram, "observe", lambda self, amount, *a: calls.append(amount))
    metrics.notifications_pushed(1000, "webhook", time.perf_counter() - 0.05)
    samples = {(s.name, s.labels.get("le")): s.value for s in histogram.collect()[0].samples}
    assert calls == []
    assert samples[("probe_latency_seconds_count", None)] == 1000
    assert samples[("probe_latency_seconds_bucket", "0.01")] == 0
    assert samples[("probe_latency_seconds_bucket", "0.1")] == 1000
    assert 1000 * 0.05 <= samples[("probe_latency_seconds_sum", None)] < 1000 * 0.1


def test_observe_many_is_observe_count_times() -> None:
    once = Histogram("probe_once", "probe", buckets=(0.001, 0.5, 2.0), registry=None)
    many = Histogram("probe_many", "probe", buckets=(0.001, 0.5, 2.0), registry=None)
    for amount, count in ((0.0005, 3), (0.5, 2), (1.5, 4), (9.0, 1)):
        for _ in range(count):
            once.observe(amount)
        metrics.observe_many(many, amount, count)
    values = [[s.value for s in h.collect()[0].samples] for h in (once, many)]
    assert values[0] == pytest.approx(values[1])
