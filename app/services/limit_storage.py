"""A ``limits`` storage on Redis that takes quota in leases, so most hits make no round trip.

Every rate limit (HTTP through Flask-Limiter, socket events, handshakes) uses the sliding window
counter strategy on this storage. With the stock Redis storage each hit is a Redis round trip,
which on the webhook was a tenth of the worker's time (see bench/PROFILE.md). Here a process
reserves quota in Redis a lease at a time (``INCRBY`` of the lease on the window's counter) and
spends it in memory; only when its lease runs out does a hit go to Redis again.

- Never more than the limit: Redis's counter holds every hit admitted and every lease still
  unspent, in every process, and a lease is only granted (or trimmed, the rest given back) as far
  as the weighted count of the two windows stays within the limit, exactly like one hit.
- The price is the other way: quota leased by one process and not spent yet counts as used for
  the others, so near the limit a process may be refused up to ``LEASE_SHARE`` (1 %) of the
  limit early per other process holding a lease, and a lease left unspent when its window ends
  counts in that window (the next window weighs it, as it weighs every hit).
- A lease is 1 % of the limit, so limits under 200 lease one hit at a time: each hit is decided
  in Redis, as with the stock storage (the per-user socket limit and the per-address limit of
  their defaults). Large limits — the webhook's per-key 6000/minute, the benchmark's raised
  ones — go to Redis once per 1 % of the limit.

Keys are ``<key>/<window number>`` with twice the window's length to live, like ``limits``' own
timestamped windows. On a Redis Cluster (``notify+redis+cluster://``) the key is a hash tag,
``<prefix>:{<key>}/<window number>``: the two windows of one limit are read together (MGET,
DEL), so they must share a slot; different limits spread over the slots.

A Redis failure surfaces as an exception from the hit when a lease is
needed, so the callers' fail-open handling applies unchanged; leases in hand are still spent.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from limits.storage import RedisClusterStorage, RedisStorage, Storage
from limits.storage.base import SlidingWindowCounterSupport, TimestampedSlidingWindow

#: ``notify+`` and the Redis URL (``redis://``, ``rediss://``, ``redis+cluster://``, ...).
SCHEMES = ["notify+redis", "notify+rediss", "notify+redis+cluster", "notify+rediss+cluster"]
#: Share of a limit leased at once.
LEASE_SHARE = 0.01


@dataclass(slots=True)
class _Lease:
    #: Hits this process may still admit in this window without asking Redis.
    left: int = 0
    #: The window's counter in Redis at the last answer (all processes' hits and leases).
    total: int = 0
    #: ``time.time()`` after which the window cannot matter any more.
    ends: float = 0.0
    #: Held while a lease is taken: callers that find the lease spent meanwhile wait for that
    #: one instead of each reserving its own (200 handshakes at a fresh process reserved 200
    #: leases at once and were refused at a fraction of the limit).
    taking: threading.Lock = field(default_factory=threading.Lock)


class LeasedRedisStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """Sliding window counters in Redis, spent locally a lease at a time."""

    STORAGE_SCHEME = SCHEMES

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options: Any) -> None:
        parts = urlsplit(uri)
        scheme = parts.scheme.removeprefix("notify+")
        #: On a cluster the two windows of a limit share a slot (a hash tag).
        self.cluster = scheme.endswith("+cluster")
        if scheme == "rediss+cluster":
            scheme, options = "redis+cluster", {**options, "ssl": True}
        redis_uri = urlunsplit((scheme, *parts[1:]))
        super().__init__(redis_uri, wrap_exceptions=wrap_exceptions, **options)
        #: The stock storage, for the strategies that do not lease (fixed window, ...).
        self.direct: RedisStorage = (RedisClusterStorage if self.cluster else RedisStorage)(
            redis_uri, wrap_exceptions=wrap_exceptions, **options
        )
        self.storage: Any = self.direct.storage
        self.prefix = str(options.get("key_prefix", "LIMITS"))
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return redis.RedisError

    # The sliding window counter -------------------------------------------------------------

    def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        if amount > limit:
            return False
        now = time.time()
        previous_key, current_key = self.sliding_window_keys(self._key(key), expiry, now)
        lease = self._lease(current_key, expiry, now)
        with self._lock:
            if lease.left >= amount:
                lease.left -= amount
                return True
        if limit * LEASE_SHARE < 2:  # leases of one hit: each caller reserves only its own
            return self._take_lease(previous_key, current_key, lease, limit, expiry, amount)
        with lease.taking:
            with self._lock:  # another caller may have just taken a lease
                if lease.left >= amount:
                    lease.left -= amount
                    return True
            return self._take_lease(previous_key, current_key, lease, limit, expiry, amount)

    def _take_lease(
        self,
        previous_key: str,
        current_key: str,
        lease: _Lease,
        limit: int,
        expiry: int,
        amount: int,
    ) -> bool:
        """Reserve ``amount`` plus a lease in Redis, keep what fits within the limit."""
        size = amount + max(0, math.floor(limit * LEASE_SHARE) - 1)
        pipe = self.storage.pipeline(transaction=False)
        pipe.incrby(current_key, size)
        pipe.expire(current_key, 2 * expiry)
        pipe.get(previous_key)
        total, _, previous_total = pipe.execute()
        previous_count = int(previous_total or 0)
        weighted = previous_count * self._previous_weight(previous_count, expiry, time.time())
        over = math.floor(weighted + int(total)) - limit
        granted = size if over <= 0 else size - over
        if granted < amount:
            lease.total = int(self.storage.decrby(current_key, size))
            return False
        if granted < size:
            total = int(self.storage.decrby(current_key, size - granted))
        with self._lock:
            lease.total = int(total)
            lease.left += granted - amount
        return True

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        """The windows as Redis counts them (leases in hand count as used)."""
        now = time.time()
        previous_key, current_key = self.sliding_window_keys(self._key(key), expiry, now)
        previous_total, current_total = self.storage.mget(previous_key, current_key)
        previous_count = int(previous_total or 0)
        previous_ttl = self._previous_weight(previous_count, expiry, now) * expiry
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous_count, previous_ttl, int(current_total or 0), current_ttl

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        previous_key, current_key = self.sliding_window_keys(self._key(key), expiry, time.time())
        with self._lock:
            self._leases.pop(previous_key, None)
            self._leases.pop(current_key, None)
        self.storage.delete(previous_key, current_key)

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{{{key}}}" if self.cluster else f"{self.prefix}:{key}"

    @staticmethod
    def _previous_weight(previous_count: int, expiry: int, now: float) -> float:
        """The share of the previous window that still counts (limits' own formula)."""
        if previous_count == 0:
            return 0.0
        return 1 - (((now - expiry) / expiry) % 1)

    def _lease(self, current_key: str, expiry: int, now: float) -> _Lease:
        """This window's lease, made empty the first time; leases of past windows dropped."""
        lease = self._leases.get(current_key)
        if lease is None:
            with self._lock:
                for name in [name for name, old in self._leases.items() if old.ends < now]:
                    del self._leases[name]
                lease = self._leases.setdefault(
                    current_key, _Lease(ends=(math.floor(now / expiry) + 1) * expiry)
                )
        return lease

    # The rest of the Storage interface: the stock Redis storage -----------------------------

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self.direct.incr(key, expiry, amount)

    def get(self, key: str) -> int:
        return self.direct.get(key)

    def get_expiry(self, key: str) -> float:
        return self.direct.get_expiry(key)

    def check(self) -> bool:
        return self.direct.check()

    def reset(self) -> int | None:
        with self._lock:
            self._leases.clear()
        return self.direct.reset()

    def clear(self, key: str) -> None:
        self.direct.clear(key)
