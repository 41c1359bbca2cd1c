"""Socket rate limits: events per user and handshakes per address, shared through Redis.

Built on the ``limits`` package that Flask-Limiter uses, on the same storage (Redis when
``REDIS_URL`` is set, memory otherwise). If the storage fails, the check lets the event through
(fail open) and logs it: authentication still applies, and refusing every user because Redis
blinked would turn a cache outage into a full outage.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from flask import Flask, current_app
from limits import RateLimitItem, RateLimitItemPerSecond, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from app.errors import ApiError, ErrorCode
from app.observability import metrics
from app.registry import services
from app.services import limit_storage  # noqa: F401 - registers the notify+redis scheme

log = logging.getLogger(__name__)
#: The WSGI environ key holding a handshake's count, taken when its Engine.IO session opened.
HANDSHAKE_COUNTED = "notify.connect_retry_after"


class SocketLimits:
    def __init__(
        self,
        storage: Storage,
        prefix: str,
        event_limit: RateLimitItem,
        connect_limit: RateLimitItem,
    ) -> None:
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        self.prefix = prefix
        self.event_limit = event_limit
        self.connect_limit = connect_limit

    def _hit(self, item: RateLimitItem, *identifiers: str) -> int | None:
        """None when allowed; else the seconds until the next attempt can pass."""
        try:
            if self.limiter.hit(item, self.prefix, *identifiers):
                return None
            reset = self.limiter.get_window_stats(item, self.prefix, *identifiers).reset_time
        except Exception as error:  # one line per event, no traceback: an outage is not a bug
            log.warning(
                "rate limit storage unavailable (%s); letting the event through",
                type(error).__name__,
            )
            return None
        return max(1, math.ceil(reset - time.time()))

    def check_event(self, user_id: str) -> None:
        """Count one client event of ``user_id``; ApiError ``rate_limited`` over the limit."""
        retry_after = self._hit(self.event_limit, "socket-event", user_id)
        if retry_after is not None:
            metrics.rate_limited("socket_event")
            raise ApiError(
                ErrorCode.RATE_LIMITED,
                "Too many events; slow down.",
                retry_after=retry_after,
            )

    def connect_retry_after(self, address: str) -> int | None:
        """Count one handshake from ``address``; seconds to wait when over the limit."""
        return self._hit(self.connect_limit, "socket-connect", address)


def make_socket_limits(app: Flask) -> SocketLimits:
    config = app.config
    storage = storage_from_string(
        config["RATELIMIT_STORAGE_URI"],
        **config["RATELIMIT_STORAGE_OPTIONS"],
    )
    event_limit = RateLimitItemPerSecond(
        config["SOCKET_RATE_LIMIT_POINTS"], config["SOCKET_RATE_LIMIT_DURATION"]
    )
    if not isinstance(storage, Storage):
        raise TypeError(f"{config['RATELIMIT_STORAGE_URI']!r} is not a synchronous storage")
    return SocketLimits(storage, "sockets", event_limit, parse(config["CONNECT_RATE_LIMIT"]))


def socket_limits() -> SocketLimits:
    return socket_limits_of(current_app)


def socket_limits_of(app: Flask | None) -> SocketLimits:
    """The socket limits of ``app`` (None: the current app)."""
    return services(app).socket_limits


def count_handshake(limits: SocketLimits, environ: dict[str, Any]) -> None:
    """Count a handshake when its Engine.IO session opens, before any CONNECT: sessions that
    never send one count against ``CONNECT_RATE_LIMIT`` too. The CONNECT reads the result."""
    environ[HANDSHAKE_COUNTED] = limits.connect_retry_after(environ.get("REMOTE_ADDR") or "unknown")


def handshake_retry_after(environ: dict[str, Any]) -> int | None:
    """Seconds to wait when this CONNECT is over ``CONNECT_RATE_LIMIT``: the count taken when
    its session opened, once; a further CONNECT on the same session counts again."""
    if HANDSHAKE_COUNTED in environ:
        retry_after: int | None = environ.pop(HANDSHAKE_COUNTED)
        return retry_after
    return socket_limits().connect_retry_after(environ.get("REMOTE_ADDR") or "unknown")
