"""The rate-limit storage on a real Redis: leases spent locally, never more than the limit."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import redis
from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from app.services.limit_storage import LeasedRedisStorage
from tests.conftest import REDIS_URL, fresh_prefix
from tests.limit_windows import in_one_window

pytestmark = pytest.mark.mariadb  # needs the run's Redis


@pytest.fixture
def storages() -> Callable[[], LeasedRedisStorage]:
    """Storages of one deployment (one prefix), as several processes would have them."""
    prefix = fresh_prefix()

    def make() -> LeasedRedisStorage:
        storage = storage_from_string(f"notify+{REDIS_URL}", key_prefix=prefix)
        assert isinstance(storage, LeasedRedisStorage)
        return storage

    return make


def redis_total(storage: LeasedRedisStorage) -> int:
    client = storage.storage
    return sum(int(client.get(key) or 0) for key in client.scan_iter(match=f"{storage.prefix}:*"))


def test_hits_within_a_lease_make_no_round_trip(
    storages: Callable[[], LeasedRedisStorage],
) -> None:
    storage = storages()
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = RateLimitItemPerMinute(1000)  # leases of 10
    assert limiter.hit(item, "webhook", "key")
    assert redis_total(storage) == 10  # this hit and a lease of 9 more, reserved at once
    assert all(limiter.hit(item, "webhook", "key") for _ in range(9))
    assert redis_total(storage) == 10  # spent in memory
    assert limiter.hit(item, "webhook", "key")
    assert redis_total(storage) == 20  # the next lease


@pytest.mark.parametrize("limit", [10, 20, 1000])
def test_several_processes_never_pass_more_than_the_limit_together(
    storages: Callable[[], LeasedRedisStorage], limit: int
) -> None:
    limiters = [SlidingWindowCounterRateLimiter(storages()) for _ in range(3)]
    item = RateLimitItemPerMinute(limit)
    in_one_window()  # across a minute boundary the window before weighs less and less
    passed = sum(limiters[i % 3].hit(item, "k") for i in range(3 * limit))
    lease = max(1, limit // 100)
    # Never more; at most a lease early per other process holding one.
    assert limit - 2 * (lease - 1) <= passed <= limit


def test_a_lease_that_does_not_fit_is_trimmed_and_the_rest_given_back(
    storages: Callable[[], LeasedRedisStorage],
) -> None:
    first, second = storages(), storages()
    item = RateLimitItemPerMinute(1000)  # leases of 10
    busy = SlidingWindowCounterRateLimiter(first)
    assert sum(busy.hit(item, "k") for _ in range(995)) == 995  # 1000 reserved in Redis
    # Here 5 of the first process's lease are still unspent: they count as used.
    assert not SlidingWindowCounterRateLimiter(second).hit(item, "k")
    assert sum(busy.hit(item, "k") for _ in range(10)) == 5  # its own lease, then no more
    assert redis_total(first) == 1000


def test_unreachable_redis_fails_the_hit_so_callers_apply_their_policy() -> None:
    storage = storage_from_string("notify+redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    with pytest.raises(redis.ConnectionError):
        SlidingWindowCounterRateLimiter(storage).hit(RateLimitItemPerMinute(100), "k")


def test_a_burst_on_a_fresh_process_takes_one_lease_not_one_per_caller(
    storages: Callable[[], LeasedRedisStorage],
) -> None:
    """200 handshakes at once on a process just started (the benchmark's connect): each found
    no lease in hand and reserved one of its own, 200 leases of 1 % each, and the limit refused
    callers far under it."""
    storage = storages()
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = RateLimitItemPerMinute(2000)  # leases of 20
    callers = 150
    barrier = threading.Barrier(callers)
    passed: list[bool] = []

    def hit() -> None:
        barrier.wait()
        passed.append(limiter.hit(item, "burst"))

    threads = [threading.Thread(target=hit) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert passed.count(True) == callers  # 150 hits of a 2000 limit
    assert redis_total(storage) <= callers + 20  # leases taken one after another, not at once
