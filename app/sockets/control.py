"""Revocations across processes: a Redis channel every process listens to, and the count of the
sockets they ended.

``POST /webhook/revoke`` commits the revocation, then publishes ``{user, cutoff, reply}`` on
``<REDIS_PREFIX>:control``, having ended its own sockets. Redis answers the PUBLISH with the
number of processes subscribed; each of the others takes the cut-off into its cache, ends its
sockets opened with a revoked token and pushes its count onto the ``reply`` list, which the
publisher reads until it has every other process's count or ``REPLY_SECONDS`` (2 s) have
passed. A process that does not answer in time (or a Redis that is down) still gets the
revocation from the database within ``services.revocations.REFRESH_SECONDS``; the answer then
counts what was known in time.

Without the Redis message queue (the embedded profile, Flask-SocketIO's test client) there is
one process: its own sockets are ended and counted directly.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import redis
from flask import Flask

from app.extensions import socketio
from app.redis_client import Client, connect_cluster, is_cluster
from app.registry import services
from app.services import revocations
from app.sockets.live import TOKEN_REVOKED, live_sessions

log = logging.getLogger(__name__)
REPLY_SECONDS = 2.0
#: Each wait for a reply (under the pool's 2 s socket timeout).
REPLY_SLICE = 0.5
SUBSCRIBE_WAIT_SECONDS = 5.0
RETRY_SECONDS = (0.5, 1, 2, 4, 8)


class ControlChannel:
    """This process's subscription to the control channel, and the publisher's side."""

    def __init__(self, app: Flask, url: str, client: Client, prefix: str) -> None:
        self.app = app
        self.url = url
        self.client = client  # the shared pool: PUBLISH and the replies
        self.channel = f"{prefix}:control"
        self.reply_prefix = f"{prefix}:control-reply:"
        self.subscribed = False
        self._started = False
        self.process_id = uuid.uuid4().hex

    def start(self) -> None:
        """Listen (once), and wait until subscribed so that PUBLISH counts this process."""
        if not self._started:
            self._started = True
            socketio.start_background_task(self._listen)
        deadline = time.monotonic() + SUBSCRIBE_WAIT_SECONDS
        while not self.subscribed and time.monotonic() < deadline:
            socketio.sleep(0.05)

    def _listen(self) -> None:
        failures = 0
        while True:
            listener: Any = None
            pubsub: Any = None
            try:
                listener, pubsub = self._subscribe()
                self.subscribed = True
                failures = 0
                for message in pubsub.listen():
                    if message.get("type") in ("message", "smessage"):
                        self._handle(message["data"])
            except redis.RedisError as error:
                log.warning("control channel: %s; subscribing again", type(error).__name__)
            except Exception:  # a bad message must not end the listener
                log.exception("control channel listener failed; subscribing again")
            finally:
                self.subscribed = False
                if pubsub is not None:
                    pubsub.close()
                if listener is not None:
                    listener.close()
            socketio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
            failures += 1

    def _subscribe(self) -> tuple[Any, Any]:
        """A connection of its own and its subscription. On a Redis Cluster the channel is a
        sharded one (SSUBSCRIBE on the master of its slot), so that SPUBLISH's answer counts
        every listening process, which a classic PUBLISH on a cluster does not (it counts the
        receiving node's subscribers only)."""
        options: dict[str, Any] = {
            "socket_connect_timeout": 5,
            "health_check_interval": 10,
            "socket_keepalive": True,
        }
        if is_cluster(self.url):
            cluster: Any = connect_cluster(self.url, **options)
            try:
                node = cluster.get_node_from_key(self.channel)
                pubsub = cluster.get_redis_connection(node).pubsub(ignore_subscribe_messages=True)
                pubsub.ssubscribe(self.channel)
            except BaseException:
                cluster.close()
                raise
            return cluster, pubsub
        listener: Any = redis.Redis.from_url(self.url, **options)
        pubsub = listener.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.channel)
        return listener, pubsub

    def _handle(self, data: bytes) -> None:
        message = json.loads(data)
        if not isinstance(message, dict) or message.get("op") != "revoke":
            return
        if message.get("from") == self.process_id:
            return  # the publisher ended its own sockets already
        user, cutoff, reply = message["user"], float(message["cutoff"]), str(message["reply"])
        with self.app.app_context():
            ended = end_local(user, cutoff)
            try:
                pipe = self.client.pipeline(transaction=False)
                pipe.rpush(reply, ended)
                pipe.expire(reply, 30)
                pipe.execute()
            except redis.RedisError as error:
                log.warning("control channel: reply lost (%s)", type(error).__name__)

    def revoke_everywhere(self, user: str, cutoff: float) -> int:
        """End this process's sockets, publish the revocation; the sum of every process's count
        within REPLY_SECONDS (this process's alone when Redis cannot be reached)."""
        total = end_local(user, cutoff)
        reply = self.reply_prefix + uuid.uuid4().hex
        message = json.dumps(
            {
                "op": "revoke",
                "user": user,
                "cutoff": cutoff,
                "reply": reply,
                "from": self.process_id,
            }
        )
        deadline = time.monotonic() + REPLY_SECONDS
        try:
            publish: Any = self.client.spublish if is_cluster(self.url) else self.client.publish
            receivers = int(publish(self.channel, message)) - self.subscribed
            answers = 0
            while answers < receivers and (left := deadline - time.monotonic()) > 0:
                popped: Any = self.client.blpop([reply], timeout=min(REPLY_SLICE, left))
                if popped is not None:
                    total += int(popped[1])
                    answers += 1
            if answers < receivers:
                log.warning("revocation: %d of %d processes answered in time", answers, receivers)
            self.client.delete(reply)
        except redis.RedisError as error:
            log.warning(
                "revocation not published (%s): the others read it from the database",
                type(error).__name__,
            )
        return total


def make_control(app: Flask, client: Client | None) -> ControlChannel | None:
    """A control channel when other processes can hear it: Redis with the message queue on."""
    url = app.config["REDIS_URL"]
    if client is not None and url and app.config["MESSAGE_QUEUE"]:
        return ControlChannel(app, url, client, app.config["REDIS_PREFIX"])
    return None


def start(app: Flask) -> None:
    """Called by the serving entry point, before it accepts sockets."""
    channel = services(app).control
    if channel is not None:
        channel.start()


def end_local(user: str, cutoff: float) -> int:
    """Take the cut-off in and end this process's sockets it revokes; how many."""
    revocations.cache().learn(user, cutoff)
    sessions = live_sessions()
    return sessions.end_all(sessions.matching({user: cutoff}), TOKEN_REVOKED)


def revoke(raw: object) -> int:
    """``POST /webhook/revoke``'s work: store the revocation, end every socket it revokes on
    every process; returns how many were ended (as far as known within REPLY_SECONDS)."""
    user, before = revocations.parse_revoke(raw)
    cutoff = revocations.store(user, before)
    channel = services().control
    return (
        channel.revoke_everywhere(user, cutoff) if channel is not None else end_local(user, cutoff)
    )
