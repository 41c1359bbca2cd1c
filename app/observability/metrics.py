"""The service's Prometheus metrics (this process's view) and the one-line calls that move them.

Every process serves its own numbers at ``GET /metrics`` and Prometheus scrapes each process;
see the README's "Observability" section for why there is no multiprocess mode.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import prometheus_client.values
from gevent.monkey import get_original
from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from app.patches.fence import fence
from app.request_locals import current_request
from app.sockets.context import current_event

if TYPE_CHECKING:
    from app.services.presence import Presence

fence(
    "prometheus_client.values.MutexValue",
    "70ff194268e82391f5853b8dd709dee88197f5dcdf00d1aa823be11450c24a3c",
    "relied on: its lock is made by the module's Lock() and held around one read or write",
)
fence(
    "prometheus_client.metrics.Histogram.observe",
    "38beca3be1d1595b61a274180f55537000e15133ead54fa07e303a86d9ceca39",
    "copied in observe_many (one latency for a batch's notifications), without exemplars",
)
# Each value's lock is held around one read or write of a float, never across a greenlet
# switch: a native lock serves as well as gevent's (which ``from threading import Lock`` gives
# a library imported after ``monkey.patch_all``), at a fraction of its cost (five increments
# per webhook). Unpatched, ``threading.Lock`` is this same function (``_thread``'s).
prometheus_client.values.Lock = get_original("_thread", "allocate_lock")  # type: ignore[attr-defined]

# ``*_created`` series would double the text output; Prometheus does not need them.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONNECTED_SOCKETS = Gauge(
    "notify_connected_sockets", "Authenticated Socket.IO connections held by this process."
)
ONLINE_USERS = Gauge("notify_online_users", "Users with at least one socket on this process.")
NOTIFICATIONS_STORED = Counter(
    "notify_notifications_stored",
    "Notifications committed to the database, by entry point (webhook, socket).",
    ["entry"],
)
NOTIFICATIONS_DELIVERED = Counter(
    "notify_notifications_delivered",
    "Notifications pushed to an online recipient: live when sent (entry webhook or socket) "
    "or, pending ones, on the recipient's next connection (entry replay).",
    ["entry"],
)
NOTIFICATIONS_REPLAYED = Counter(
    "notify_notifications_replayed",
    "Notifications pushed to a socket on connect: pending ones, or those newer than lastId.",
)
DELIVERY_LATENCY = Histogram(
    "notify_delivery_latency_seconds",
    "Seconds from a notification's commit to its live push to the recipient's room.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
RATE_LIMIT_REFUSALS = Counter(
    "notify_rate_limit_refusals",
    "Refused by a rate limit: HTTP requests, socket events and socket handshakes.",
    ["scope"],
)
AUTH_REFUSALS = Counter(
    "notify_auth_refusals",
    "Refused credentials: token_missing, token_invalid, token_expired (socket handshakes and "
    "bearer tokens), api_key_invalid (webhook), metrics_token_invalid.",
    ["code"],
)
MESSAGE_QUEUE_RECEIVED = Counter(
    "notify_message_queue_received",
    "Messages this process's message-queue listener took from Redis, by channel: own (pushes "
    "routed to this process) or broadcast (room and everyone emits, processes that do not route).",
    ["channel"],
)
MESSAGE_QUEUE_CPU = Counter(
    "notify_message_queue_listener_cpu_seconds",
    "CPU seconds this process spent handling what its message-queue listener received.",
)
SESSIONS_ENDED_BY_PROTOCOL = Counter(
    "notify_sessions_ended_by_protocol",
    "Engine.IO sessions the server ended for what the client sent or failed to send, by kind: "
    "engineio_packet, socketio_packet (a packet that does not parse, or of an unknown type), "
    "unknown_namespace, overlapping_poll, connect_timeout (no Socket.IO CONNECT in time).",
    ["kind"],
)
WEBHOOK_RESPONSES = Counter(
    "notify_webhook_responses", "Responses of the webhook, by HTTP status.", ["status"]
)
GC_PAUSES = Histogram(
    "notify_gc_pause_seconds",
    "Seconds the process stood still in a garbage collection, by generation (2 = full).",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
)

#: The kinds of ``SESSIONS_ENDED_BY_PROTOCOL``.
PROTOCOL_KINDS = (
    "engineio_packet",
    "socketio_packet",
    "unknown_namespace",
    "overlapping_poll",
    "connect_timeout",
)

# Series that exist from the start at 0, so that rate() and alerts see their first increase.
for _entry in ("webhook", "socket"):
    NOTIFICATIONS_STORED.labels(entry=_entry)
for _entry in ("webhook", "socket", "replay"):
    NOTIFICATIONS_DELIVERED.labels(entry=_entry)
for _scope in ("http", "socket_event", "socket_connect"):
    RATE_LIMIT_REFUSALS.labels(scope=_scope)
for _kind in PROTOCOL_KINDS:
    SESSIONS_ENDED_BY_PROTOCOL.labels(kind=_kind)
for _generation in ("0", "1", "2"):
    GC_PAUSES.labels(generation=_generation)
for _code in ("token_missing", "token_invalid", "token_expired", "api_key_invalid"):
    AUTH_REFUSALS.labels(code=_code)
for _channel in ("own", "broadcast"):
    MESSAGE_QUEUE_RECEIVED.labels(channel=_channel)


#: Each labelled series' child, by (metric, label value): ``labels()`` takes a lock and builds a
#: key on every call, several times per notification. Label values here are few and fixed.
_children: dict[tuple[int, str], Any] = {}


def _series(metric: Any, value: str) -> Any:
    child = _children.get((id(metric), value))
    if child is None:
        child = _children[(id(metric), value)] = metric.labels(value)
    return child


def entry_point() -> str:
    """Where the current work came in: ``socket`` in a Socket.IO event, the blueprint's name
    (``webhook``) in an HTTP request, ``other`` anywhere else (a CLI command)."""
    if current_event() is not None:
        return "socket"
    try:
        request = current_request()
    except LookupError:
        return "other"
    return request.blueprint or "http"


def notifications_stored(count: int, entry: str) -> None:
    """Called right after ``count`` notifications that came in at ``entry`` were committed."""
    _series(NOTIFICATIONS_STORED, entry).inc(count)


def notifications_pushed(count: int, entry: str, committed_at: float) -> None:
    """Called after a live push of ``count`` notifications committed at ``committed_at``
    (``time.perf_counter()``): counts them delivered and observes commit → emit."""
    if not count:
        return
    _series(NOTIFICATIONS_DELIVERED, entry).inc(count)
    observe_many(DELIVERY_LATENCY, time.perf_counter() - committed_at, count)


def observe_many(histogram: Histogram, amount: float, count: int) -> None:
    """``histogram.observe(amount)`` ``count`` times in one step (``Histogram.observe``'s own
    steps, copied: the sum, then the first bucket not below ``amount``): a batch's notifications
    share one commit and one push, so one latency. The sum gains ``amount * count``, which
    differs from ``count`` additions only in the last bits of a float."""
    histogram._raise_if_not_observable()  # type: ignore[no-untyped-call]
    histogram._sum.inc(amount * count)
    for i, bound in enumerate(histogram._upper_bounds):
        if amount <= bound:
            histogram._buckets[i].inc(count)
            break


def notifications_replayed(replayed: int, delivered: int) -> None:
    """Called after a replay on connect: ``replayed`` pushed, ``delivered`` of them pending."""
    NOTIFICATIONS_REPLAYED.inc(replayed)
    NOTIFICATIONS_DELIVERED.labels(entry="replay").inc(delivered)


def rate_limited(scope: str) -> None:
    RATE_LIMIT_REFUSALS.labels(scope=scope).inc()


def auth_refused(code: str) -> None:
    AUTH_REFUSALS.labels(code=code).inc()


def session_ended_by_protocol(kind: str) -> None:
    SESSIONS_ENDED_BY_PROTOCOL.labels(kind=kind).inc()


def webhook_responded(status: int) -> None:
    _series(WEBHOOK_RESPONSES, str(status)).inc()


def message_queue_handled(channel: str, cpu_seconds: float) -> None:
    MESSAGE_QUEUE_RECEIVED.labels(channel=channel).inc()
    MESSAGE_QUEUE_CPU.inc(cpu_seconds)


def sample_presence(tracker: Presence) -> None:
    """Set the gauges from this process's presence, at scrape time: always the current truth,
    with no increment or decrement to miss on an odd disconnect path."""
    CONNECTED_SOCKETS.set(tracker.socket_count())
    ONLINE_USERS.set(tracker.user_count())


def gc_paused(generation: int, seconds: float) -> None:
    _series(GC_PAUSES, str(generation)).observe(seconds)
