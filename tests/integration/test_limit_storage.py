"""The rate-limit storage on a real Redis: local counting under half a limit, exact above it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from app.services.limit_storage import SyncedRedisStorage
from tests.conftest import REDIS_URL, fresh_prefix

pytestmark = pytest.mark.mariadb  # needs the run's Redis


@pytest.fixture
def storages() -> Callable[[], SyncedRedisStorage]:
    """Storages of one deployment (one prefix), as two processes would have them."""
    prefix = fresh_prefix()

    def make() -> SyncedRedisStorage:
        storage = storage_from_string(f"notify+{REDIS_URL}", key_prefix=prefix)
        assert isinstance(storage, SyncedRedisStorage)
        return storage

    return make


def redis_total(storage: SyncedRedisStorage) -> int:
    return sum(
        int(storage.storage.get(key) or 0)
        for key in storage.storage.scan_iter(match=f"{storage.prefix}:*")
    )


def test_hits_under_half_the_limit_are_counted_locally_then_written_by_the_sync(
    storages: Callable[[], SyncedRedisStorage],
) -> None:
    first, second = storages(), storages()
    limiter = SlidingWindowCounterRateLimiter(first)
    item = RateLimitItemPerMinute(100)
    assert all(limiter.hit(item, "webhook", "key") for _ in range(10))
    assert redis_total(first) == 0  # nothing written yet: no round trip per hit
    first.sync()
    assert redis_total(first) == 10
    stats = SlidingWindowCounterRateLimiter(second).get_window_stats(item, "webhook", "key")
    assert stats.remaining == 90  # another process sees them


def test_from_half_of_the_limit_two_processes_share_it_exactly(
    storages: Callable[[], SyncedRedisStorage],
) -> None:
    first, second = storages(), storages()
    limiters = [SlidingWindowCounterRateLimiter(first), SlidingWindowCounterRateLimiter(second)]
    item = RateLimitItemPerMinute(10)
    passed = sum(limiters[0].hit(item, "k") for _ in range(5))
    first.sync()
    # Alternating from here on: every hit above half of the limit is decided in Redis.
    passed += sum(limiters[i % 2].hit(item, "k") for i in range(20))
    assert passed == 10
    assert redis_total(first) == 10  # refused hits were taken back


def test_a_small_limit_is_exact_across_processes_without_any_sync(
    storages: Callable[[], SyncedRedisStorage],
) -> None:
    """Under a limit of 1 nothing is ever counted locally."""
    first, second = storages(), storages()
    item = RateLimitItemPerMinute(1)
    assert SlidingWindowCounterRateLimiter(first).hit(item, "k")
    assert not SlidingWindowCounterRateLimiter(second).hit(item, "k")


def test_unreachable_redis_fails_the_hit_so_callers_apply_their_policy() -> None:
    storage = storage_from_string("notify+redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    with pytest.raises(redis.ConnectionError):
        SlidingWindowCounterRateLimiter(storage).hit(RateLimitItemPerMinute(100), "k")


def test_a_key_in_use_learns_the_other_processes_hits_at_its_next_sync(
    storages: Callable[[], SyncedRedisStorage],
) -> None:
    first, second = storages(), storages()
    item = RateLimitItemPerMinute(1000)
    limiters = [SlidingWindowCounterRateLimiter(first), SlidingWindowCounterRateLimiter(second)]
    assert limiters[0].hit(item, "k")  # the first process knows the window from here on
    assert all(limiters[1].hit(item, "k") for _ in range(30))
    second.sync()
    assert limiters[0].get_window_stats(item, "k").remaining == 999  # not seen yet
    assert limiters[0].hit(item, "k")
    first.sync()
    assert limiters[0].get_window_stats(item, "k").remaining == 1000 - 32
