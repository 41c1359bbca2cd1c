"""A ``limits`` storage on Redis that counts locally while a limit is far away.

Every rate limit (HTTP through Flask-Limiter, socket events, handshakes) uses the sliding window
counter strategy on this storage. With the stock Redis storage each hit is a Redis round trip,
which on the webhook was a tenth of the worker's time (see bench/PROFILE.md). Here:

- While a key's weighted count, as this process knows it, stays at or under half of its limit,
  a hit is counted in memory; every ``SYNC_INTERVAL`` seconds a background worker adds the hits
  counted meanwhile to Redis (one ``INCRBY`` per key that had hits, pipelined), whose answer is
  the total of every process, so a key in use sees the other processes' hits within that
  interval. Keys without hits cost nothing.
- From half of the limit on, every hit is counted in Redis at once and decided on the total
  there (one pipelined round trip), as the stock storage does, so the limit itself is exact.
  The only slack is below half the limit: what other processes counted locally and have not
  written yet (at most ``SYNC_INTERVAL`` seconds of their traffic).
- A window this process has not seen yet is read from Redis before its first hit is decided.

Keys are ``<key>/<window number>`` with twice the window's length to live, like ``limits``'
own timestamped windows. A Redis failure surfaces as an exception from the hit, so the callers'
fail-open handling applies unchanged; hits counted locally are kept and written once Redis is
back.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from limits.storage import RedisStorage, Storage
from limits.storage.base import SlidingWindowCounterSupport, TimestampedSlidingWindow

log = logging.getLogger(__name__)

#: ``notify+redis://`` or ``notify+rediss://``: the Redis URL with this storage's scheme.
SCHEMES = ["notify+redis", "notify+rediss"]
#: Seconds between two writes of the locally counted hits (and reads of every live window).
SYNC_INTERVAL = 0.1
#: Share of a limit under which hits are counted locally.
LOCAL_SHARE = 0.5


@dataclass(slots=True)
class _Window:
    expiry: int
    #: Total in Redis at the last read, this process's written hits included.
    remote: int = 0
    #: Hits counted here and not written yet.
    pending: int = 0
    #: ``time.time()`` after which nothing can use this window any more.
    ends: float = 0.0
    #: Whether this process already gave the key its time to live.
    expires: bool = False


class SyncedRedisStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """Sliding window counters in Redis, counted locally under half of the limit."""

    STORAGE_SCHEME = SCHEMES

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options: Any) -> None:
        parts = urlsplit(uri)
        redis_uri = urlunsplit((parts.scheme.removeprefix("notify+"), *parts[1:]))
        super().__init__(redis_uri, wrap_exceptions=wrap_exceptions, **options)
        #: The stock storage, for the strategies that do not count locally (fixed window, ...).
        self.direct = RedisStorage(redis_uri, wrap_exceptions=wrap_exceptions, **options)
        self.storage: redis.Redis = self.direct.storage
        self.prefix = str(options.get("key_prefix", "LIMITS"))
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return redis.RedisError

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    # The sliding window counter -------------------------------------------------------------

    def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        if amount > limit:
            return False
        now = time.time()
        previous_key, current_key = self.sliding_window_keys(self._key(key), expiry, now)
        previous, current = self._known(previous_key, current_key, expiry, now)
        weight = self._previous_weight(previous, expiry, now)
        local_count = previous.remote + previous.pending
        weighted = local_count * weight + current.remote + current.pending
        if weighted + amount <= limit * LOCAL_SHARE:
            with self._lock:
                current.pending += amount
            self._start_worker()
            return True
        return self._acquire_in_redis(previous_key, current_key, previous, current, limit, amount)

    def _acquire_in_redis(
        self,
        previous_key: str,
        current_key: str,
        previous: _Window,
        current: _Window,
        limit: int,
        amount: int,
    ) -> bool:
        """Write this window's pending hits plus this one, decide on Redis's totals."""
        with self._lock:
            written, current.pending = current.pending, 0
            current.remote += written
        expiry = current.expiry
        try:
            pipe = self.storage.pipeline(transaction=False)
            pipe.incrby(current_key, written + amount)
            pipe.get(previous_key)
            if not current.expires:
                pipe.expire(current_key, 2 * expiry)
            total, previous_total, *_ = pipe.execute()
            current.expires = True
        except BaseException:
            with self._lock:
                current.pending += written
                current.remote -= written
            raise
        now = time.time()
        previous.remote = int(previous_total or 0)
        weight = self._previous_weight(previous, expiry, now)
        if math.floor(previous.remote * weight + int(total)) > limit:
            # Over the limit: take this hit back (the pending ones written with it stay).
            current.remote = int(self.storage.decrby(current_key, amount))
            return False
        current.remote = int(total)
        return True

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        now = time.time()
        previous_key, current_key = self.sliding_window_keys(self._key(key), expiry, now)
        previous, current = self._known(previous_key, current_key, expiry, now)
        previous_count = previous.remote + previous.pending
        previous_ttl = self._previous_weight(previous, expiry, now) * expiry
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous_count, previous_ttl, current.remote + current.pending, current_ttl

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        previous_key, current_key = self.sliding_window_keys(self._key(key), expiry, time.time())
        with self._lock:
            self._windows.pop(previous_key, None)
            self._windows.pop(current_key, None)
        self.storage.delete(previous_key, current_key)

    @staticmethod
    def _previous_weight(previous: _Window, expiry: int, now: float) -> float:
        """The share of the previous window that still counts (limits' own formula)."""
        if previous.remote + previous.pending == 0:
            return 0.0
        return 1 - (((now - expiry) / expiry) % 1)

    def _known(
        self, previous_key: str, current_key: str, expiry: int, now: float
    ) -> tuple[_Window, _Window]:
        """Both windows, read from Redis the first time this process needs them."""
        windows = self._windows
        previous = windows.get(previous_key)
        current = windows.get(current_key)
        if previous is None or current is None:
            previous_total, current_total = self.storage.mget(previous_key, current_key)
            ends = (math.floor(now / expiry) + 2) * expiry
            with self._lock:
                previous = windows.setdefault(previous_key, _Window(expiry, ends=ends - expiry))
                current = windows.setdefault(current_key, _Window(expiry, ends=ends))
                previous.remote = int(previous_total or 0)
                current.remote = int(current_total or 0)
        return previous, current

    # The background writer ------------------------------------------------------------------

    def _start_worker(self) -> None:
        if self._worker is None:
            with self._lock:
                if self._worker is None:
                    self._worker = threading.Thread(
                        target=self._sync_forever, name="rate-limit-sync", daemon=True
                    )
                    self._worker.start()

    def _sync_forever(self) -> None:
        failing = False
        while True:
            time.sleep(SYNC_INTERVAL)
            try:
                self.sync()
            except Exception as error:  # noqa: BLE001 - keep counting; written when Redis is back
                if not failing:
                    log.warning("rate limit sync failed: %s", type(error).__name__)
                failing = True
            else:
                failing = False

    def sync(self) -> None:
        """Write the locally counted hits; each key's answer is its total in Redis."""
        now = time.time()
        with self._lock:
            for name in [name for name, window in self._windows.items() if window.ends < now]:
                if self._windows[name].pending == 0:
                    del self._windows[name]
            dirty = [(name, window) for name, window in self._windows.items() if window.pending]
            written = [window.pending for _, window in dirty]
            for _, window in dirty:
                window.remote += window.pending  # counted as written while the write is under way
                window.pending = 0
        if not dirty:
            return
        pipe = self.storage.pipeline(transaction=False)
        for (name, window), count in zip(dirty, written, strict=True):
            pipe.incrby(name, count)
            if not window.expires:
                pipe.expire(name, 2 * window.expiry)
        try:
            replies = iter(pipe.execute())
        except BaseException:
            with self._lock:
                for (_, window), count in zip(dirty, written, strict=True):
                    window.pending += count
                    window.remote -= count
            raise
        for _, window in dirty:
            window.remote = int(next(replies))
            if not window.expires:
                next(replies)  # EXPIRE
                window.expires = True

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
            self._windows.clear()
        return self.direct.reset()

    def clear(self, key: str) -> None:
        self.direct.clear(key)
