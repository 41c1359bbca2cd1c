"""python-socketio's Redis manager, replaced: pushes routed to the processes that hold their
recipient, batches of emits in one message, a Redis Cluster with sharded pub/sub.

What python-socketio does (5.x, ``socketio.redis_manager.RedisManager``): every emit, to one
socket or to a room, is published on one channel that every process subscribes to; each process
parses every message and emits it to whatever members of the room it has (mostly none). A
process's cost grows with the whole cluster's traffic instead of its own users' (at 16 processes
a third of each process's CPU went into that listener, open-webui issue 28173). Its
``_publish`` logs a failure and returns, so a caller cannot tell a push that reached nobody; its
listener only knows ``SUBSCRIBE`` on one Redis (no cluster, no sharded channels) and backs off
up to a minute after a failure.

What this manager does instead:

- ``emit_routed``: each push names the processes that hold sockets of its recipient (read from
  presence by the caller). Sockets of this process get it at once; each other process gets its
  share in one message on a channel of its own, ``<channel>:to:<process id>``. A user online
  nowhere costs nothing, and a process whose users receive nothing receives nothing. Each push
  reports whether every process it went to had a listener: ``PUBLISH``/``SPUBLISH`` answer how
  many subscribers got the message, and 0 (a crashed process, a listener between two
  subscriptions) leaves the notification pending instead of recording it delivered.
- The broadcast channel stays subscribed, so a write-only ``SocketIO(message_queue=...)`` in
  another program, any room or everyone emit, and processes that do not route (an older
  version, ``ROUTED_DELIVERY=0``) still reach every socket. A push for a user with a socket on a
  process that does not route goes on the broadcast channel (once), see ``is_routed``.
- On a Redis Cluster (``redis+cluster://`` URL) the per-process channels are shard channels
  (``SSUBSCRIBE``/``SPUBLISH``, Redis 7): a message travels to the one shard that owns the
  channel's slot instead of the whole cluster bus, and channels of different processes spread
  over the slots. The listener holds one connection to that shard's master, with the broadcast
  channel (classic pub/sub, which a cluster forwards to every node) on the same connection. After
  a failover or a slot move (the server then sends ``sunsubscribe``) it finds the new owner and
  subscribes again, retrying every second or so, not up to a minute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import redis
import socketio
from redis.cluster import RedisCluster

from app.observability import metrics
from app.patches.fence import fence
from app.patches.socketio import Emit, IndexedRooms
from app.redis_client import connect_cluster, is_cluster

log = logging.getLogger(__name__)

for _target, _sha, _why in (
    (
        "socketio.redis_manager.RedisManager._redis_connect",
        "da4530c936323c252b3525c979986934b83a23d0e2a929e5ce89bb6cd3cfff95",
        "replaced: one Redis or a Redis Cluster",
    ),
    (
        "socketio.redis_manager.RedisManager._publish",
        "9218e2786bc47d269215f4eec4b219c8277798d4a83c6704b06e13925de9f57d",
        "replaced (same retry and log for standard emits) and bypassed by emit_routed",
    ),
    (
        "socketio.redis_manager.RedisManager._redis_listen_with_retries",
        "a19262da0295db203961f4868ce9544ec2db02a989fc5067b7a028fdf9bf9e2a",
        "replaced: two subscriptions, sharded on a cluster, short backoff, confirmed state",
    ),
    (
        "socketio.redis_manager.RedisManager._listen",
        "cf4821d0f65d752c381426cd294ececd07973b11dbb948b0ecfbd2683342a283",
        "replaced: both channels, own batches skipped unparsed",
    ),
    (
        "socketio.pubsub_manager.PubSubManager._handle_emit",
        "f1fb64e2d84161f6a1a3e4455c1c01ef70230962f1e78b95473d6eb3164f3a2c",
        "wrapped and relied on: the emit of one message dict, to this process's sockets",
    ),
    (
        "socketio.pubsub_manager.PubSubManager._thread",
        "ecce2e6d100101a4c5eafcca691d2b0e9e99a1e8eb06d8c2889899f2b3f8858a",
        "relied on: parses what _listen yields, skips our host_id, dispatches emit messages",
    ),
    (
        "socketio.pubsub_manager.PubSubManager.emit",
        "d26eb5218961eb56451f8b5286063e1c3effdd7ce374bb35c77f099cbc5528ce",
        "relied on: the message shape of a standard emit, which a batch item copies",
    ),
):
    fence(_target, _sha, _why)

#: Key of a published message that carries several emits.
BATCH = "notify_batch"
#: Process ids of processes that route start with this (see ``is_routed``).
ROUTED_MARK = "r-"
RETRY_FIRST = 0.5
RETRY_MAX = 5.0
#: Redis connections of the message queue per process: its listener, and up to three publishers
#: at once (the delivery batch worker, and read receipts or disconnects from request greenlets).
CONNECTIONS = 4


def is_routed(process_id: str) -> bool:
    """Whether the process that wrote this presence entry listens on its own channel.

    Presence members are ``<process id>|<sid>``; a routing process's id starts with ``r-``, one
    of an older version (or with ``ROUTED_DELIVERY=0``) with its pid, a digit. Pushes for users
    with a socket on a process that does not route go on the broadcast channel.
    """
    return process_id.startswith(ROUTED_MARK)


class Routed(NamedTuple):
    """One push: ``data`` to the sockets in ``room`` (but ``skip_sid``), held by ``processes``."""

    data: Any
    room: str
    processes: frozenset[str]
    skip_sid: str | None = None


def plain_emits(batch: list[Any]) -> list[Emit] | None:
    """A batch's items as ``emit_each`` takes them, when each is an emit of one argument with
    no callback and no binary parts, all of one event and namespace (what ``emit_routed``
    publishes); else None (each item python-socketio's way)."""
    first = batch[0] if batch else None
    if not isinstance(first, dict):
        return None
    event, namespace = first.get("event"), first.get("namespace")
    emits = []
    for item in batch:
        if (
            not isinstance(item, dict)
            or item.get("event") != event
            or item.get("namespace") != namespace
            or item.get("callback") is not None
            or item.get("binary")
            or not isinstance(item.get("data"), list)
            or len(item["data"]) != 1
        ):
            return None
        emits.append(Emit(item["data"][0], item.get("room"), item.get("skip_sid")))
    return emits if isinstance(event, str) else None


class RoutedRedisManager(IndexedRooms, socketio.RedisManager):  # type: ignore[misc]
    """A python-socketio Redis manager with ``emit_routed`` (see the module doc)."""

    def __init__(
        self,
        url: str,
        channel: str,
        process_id: str,
        *,
        routed: bool = True,
        redis_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(url, channel=channel, redis_options=redis_options)
        self.process_id = process_id
        self.routed = routed and is_routed(process_id)
        self.cluster = is_cluster(url)
        #: This process's own channel (None when it does not route).
        self.inbox = self.inbox_of(process_id) if self.routed else None
        #: True once the server confirmed every subscription, False from the first error.
        self.listening = False

    def inbox_of(self, process_id: str) -> str:
        return f"{self.channel}:to:{process_id}"

    # Connections ----------------------------------------------------------------------------

    def _redis_connect(self) -> None:
        """python-socketio's ``Redis.from_url`` pool has no bound (a burst of publishing
        greenlets opens a connection each); this one holds at most ``CONNECTIONS`` (the
        listener's and the publishers'), and a publisher beyond them waits for a free one."""
        client: Any = (
            connect_cluster(self.redis_url, **self.redis_options)
            if self.cluster
            else redis.Redis(
                connection_pool=redis.BlockingConnectionPool.from_url(
                    self.redis_url, max_connections=CONNECTIONS, timeout=5, **self.redis_options
                )
            )
        )
        self.redis = client
        self.pubsub = None
        self.connected = True

    def _client(self) -> Any:
        if not self.connected or self.redis is None:
            self._redis_connect()
        return self.redis

    def _subscribe(self) -> tuple[Any, set[str]]:
        """A pub/sub connection subscribed (not yet confirmed) to every channel we need."""
        client: Any = self._client()
        if isinstance(client, RedisCluster):
            # The shard's master for our channel; classic pub/sub on the same connection, which
            # the cluster forwards from any node.
            cluster: Any = client  # redis-py's cluster client is untyped
            cluster.nodes_manager.initialize()
            node = cluster.get_node_from_key(self.inbox or self.channel)
            pubsub = cluster.get_redis_connection(node).pubsub()
        else:
            pubsub = client.pubsub()
        pubsub.subscribe(self.channel)
        wanted = {self.channel}
        if self.inbox is not None:
            if self.cluster:
                pubsub.ssubscribe(self.inbox)
            else:
                pubsub.subscribe(self.inbox)
            wanted.add(self.inbox)
        return pubsub, wanted

    # Publishing -----------------------------------------------------------------------------

    def _publish(self, data: Any) -> Any:
        """A standard message (python-socketio's own emits, disconnects, ...) on the broadcast
        channel: as upstream, two attempts, then logged and dropped."""
        for retries_left in (1, 0):
            try:
                return self._client().publish(self.channel, self.json.dumps(data))
            except Exception as error:  # noqa: BLE001 - upstream's behaviour: log and go on
                self.connected = False
                level = logging.WARNING if retries_left else logging.ERROR
                log.log(level, "message queue: cannot publish to Redis (%s)", error)
        return None

    def _publish_batch(self, channel: str, messages: list[dict[str, Any]], shard: bool) -> int:
        """One message with ``messages``; the number of subscribers that got it (a broadcast
        on a cluster counts only the node's own, so 1 stands for "sent"). Raises RedisError."""
        # host_id first: the listener recognises its own batch by its first bytes.
        payload = self.json.dumps({"host_id": self.host_id, "method": "emit", BATCH: messages})
        client = self._client()
        try:
            if shard and self.cluster:
                return int(client.spublish(channel, payload))
            receivers = int(client.publish(channel, payload))
        except redis.RedisError:
            self.connected = False
            raise
        return receivers if not self.cluster else 1

    def emit_routed(self, event: str, items: Sequence[Routed], namespace: str = "/") -> list[bool]:
        """Emit each item to its room on the processes it names; for each, whether every
        process it went to had a listener for it.

        Sockets of this process get it before this returns; each other process that routes
        gets one message with all of its items, in order; items for a process that does not
        route share one message on the broadcast channel, which every process hears (and all
        items when this process does not route). A failed or unheard PUBLISH makes its items
        False.
        """
        reached = [True] * len(items)
        broadcast: list[int] = []
        by_process: dict[str, list[int]] = {}
        here = [
            Emit(item.data, item.room, item.skip_sid)
            for item in items
            if self.process_id in item.processes
        ]
        if here:
            self.emit_each(event, here, namespace)
        me = {self.process_id}
        for index, item in enumerate(items):
            if not self.routed and item.processes:
                broadcast.append(index)  # as before routing: every push to every process
                continue
            if item.processes <= me:
                continue  # here only (or nowhere): nothing to publish
            others = item.processes - me
            if not all(is_routed(process) for process in others):
                broadcast.append(index)
                continue
            for process in others:
                by_process.setdefault(process, []).append(index)
        sends = [(self.channel, broadcast, False)] if broadcast else []
        sends += [(self.inbox_of(p), indexes, True) for p, indexes in by_process.items()]
        for channel, indexes, shard in sends:
            messages = [
                {
                    "event": event,
                    "data": [items[i].data],
                    "namespace": namespace,
                    "room": items[i].room,
                    "skip_sid": items[i].skip_sid,
                }
                for i in indexes
            ]
            try:
                heard = self._publish_batch(channel, messages, shard) > 0
            except redis.RedisError as error:
                log.warning("message queue: a push of %d failed (%s)", len(indexes), error)
                heard = False
            if not heard:
                for i in indexes:
                    reached[i] = False
        return reached

    # Listening ------------------------------------------------------------------------------

    def _redis_listen_with_retries(self) -> Iterator[dict[str, Any]]:
        retry = RETRY_FIRST
        while True:
            pubsub = None
            try:
                pubsub, wanted = self._subscribe()
                confirmed: set[str] = set()
                for message in pubsub.listen():
                    kind = message["type"]
                    channel = message["channel"]
                    channel = channel.decode() if isinstance(channel, bytes) else channel
                    if kind in ("subscribe", "ssubscribe"):
                        confirmed.add(channel)
                        if confirmed >= wanted:
                            self.listening = True
                            retry = RETRY_FIRST
                    elif kind in ("unsubscribe", "sunsubscribe"):
                        # A slot moved or a master became a replica: subscribe again.
                        raise redis.ConnectionError(f"{channel} unsubscribed by the server")
                    elif channel in wanted:
                        yield message
            except Exception as error:  # noqa: BLE001 - the listener must outlive any failure
                self.listening = False
                self.connected = False
                log.warning(
                    "message queue: cannot receive from Redis (%s); retrying in %.1f s",
                    error,
                    retry,
                )
                time.sleep(retry)
                retry = min(retry * 2, RETRY_MAX)
            finally:
                self.listening = False
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # noqa: BLE001 - a dead connection may fail to close
                        log.debug("closing the pub/sub connection failed", exc_info=True)

    def _listen(self) -> Iterator[bytes]:
        """Every message but this process's own batches, which it already emitted.

        python-socketio parses each message before it looks at ``host_id``; for a batch of
        1,000 notifications that parse was a tenth of the sending process's work.
        """
        own = self.json.dumps({"host_id": self.host_id})[:-1].encode() + b","
        broadcast = self.channel.encode()
        for message in self._redis_listen_with_retries():
            data = message.get("data")
            if isinstance(data, bytes) and not data.startswith(own):
                kind = "broadcast" if message["channel"] == broadcast else "own"
                started = time.thread_time()
                yield data  # python-socketio's _thread parses and emits it before the next
                metrics.message_queue_handled(kind, time.thread_time() - started)

    def _handle_emit(self, message: dict[str, Any]) -> None:
        batch = message.get(BATCH)
        if isinstance(batch, list):
            emits = plain_emits(batch)
            if emits is not None:
                self.emit_each(batch[0]["event"], emits, batch[0].get("namespace") or "/")
                return
            for item in batch:
                if isinstance(item, dict):
                    super()._handle_emit(item)
            return
        super()._handle_emit(message)
