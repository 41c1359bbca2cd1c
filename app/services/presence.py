"""Who is online: a count of sockets per user, across processes when Redis is configured.

Redis layout: one sorted set per user, ``<prefix>:presence:<user>``, whose members are
``<process id>|<sid>`` scored by the time they expire. Each process refreshes the scores of its own
sockets every ``PRESENCE_TTL / 3`` seconds, so the sockets of a process that dies stop counting
within ``PRESENCE_TTL`` seconds (45 by default, under the contract's 60) without anyone cleaning
up after it. "Where is user X online?" is one ZRANGEBYSCORE of the unexpired members: their
process ids say which processes a push goes to (``locate``, ``sending._deliver_batch``).

If Redis fails, answers fall back to this process's own sockets: a user seen offline gets the
notification as ``pending`` and by replay, so a Redis outage can delay but never lose one.

A process advertises its sockets only while it can receive what others publish (its
message-queue listener is subscribed): after a Redis restart the heartbeat would otherwise
write its entries back before python-socketio's listener has resubscribed (its retries back off
up to a minute), and other processes would push into a channel nobody here listens to and
record those notifications delivered. Until then its users count as offline elsewhere, and what
they are sent waits as ``pending``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis
from flask import Flask
from redis.commands.core import Script

from app import message_queue
from app.redis_client import Client
from app.registry import services
from app.services.batching import Batcher, HeldConnection

log = logging.getLogger(__name__)
#: Presence writes (adds and removals) sent in one call, and users refreshed by one call of the
#: heartbeat: building the call and parsing its answer is CPU the event loop waits for. As a
#: pipeline that was 25-44 us per user (1,000 users in one blocked it 24-27 ms), as a script
#: ~7 us; 50 users per heartbeat call keep even a cluster's pipeline under 5 ms
#: (``bench/micro_heartbeat.py``).
MAX_WRITES = 200
HEARTBEAT_USERS = 50
#: Users located by one call of ``LOCATE_SCRIPT`` (its keys are named in the call, as Redis asks).
LOCATE_USERS = 1000
#: ``locate`` on one Redis: for each key, the distinct process ids of its unexpired members (what
#: precedes the first ``|``), as one JSON text (cjson writes an empty list as ``{}``). redis-py
#: packs and parses a pipeline's 1,000 ZRANGEBYSCOREs in pure Python (11-16 ms of CPU); one call
#: and one ``json.loads`` cost 1.5 ms.
LOCATE_SCRIPT = """
local found = {}
for i, key in ipairs(KEYS) do
  local seen, processes = {}, {}
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', key, ARGV[1], '+inf')) do
    local process = string.match(member, '^([^|]*)')
    if not seen[process] then
      seen[process] = true
      processes[#processes + 1] = process
    end
  end
  found[i] = processes
end
return cjson.encode(found)
"""


#: ``heartbeat`` on one Redis, for some users in one call: for each key, its members (``ARGV``
#: from 4: a count, then that many members) at the new expiry, the expired ones dropped, the
#: key's expiry pushed forward. One reply for all, the arguments packed by hiredis: a pipeline
#: of three commands per user cost 26-44 us of CPU per user to pack and parse.
HEARTBEAT_SCRIPT = """
local expires, now, ttl = ARGV[1], ARGV[2], ARGV[3]
local at = 4
for _, key in ipairs(KEYS) do
  local count = tonumber(ARGV[at])
  for i = at + 1, at + count do
    redis.call('ZADD', key, expires, ARGV[i])
  end
  at = at + count + 1
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
"""

#: ``_write_batch`` on one Redis, in one call: ``ARGV[2 + i]`` is ``+member`` (added to
#: ``KEYS[i]`` at the expiry ``ARGV[1]``, the key's expiry pushed to ``ARGV[2]`` seconds) or
#: ``-member`` (removed), in the order the connects and disconnects came.
WRITES_SCRIPT = """
local expires, ttl = ARGV[1], ARGV[2]
for i, key in ipairs(KEYS) do
  local write = ARGV[i + 2]
  local member = string.sub(write, 2)
  if string.sub(write, 1, 1) == '+' then
    redis.call('ZADD', key, expires, member)
    redis.call('EXPIRE', key, ttl)
  else
    redis.call('ZREM', key, member)
  end
end
return #KEYS
"""


class Presence:
    """In-process presence: the whole truth for one process, and the fallback for Redis."""

    def __init__(self) -> None:
        self._local: defaultdict[str, set[str]] = defaultdict(set)
        self._lock = threading.Lock()

    def add(self, user_id: str, sid: str) -> None:
        with self._lock:
            self._local[user_id].add(sid)

    def remove(self, user_id: str, sid: str) -> None:
        with self._lock:
            sids = self._local.get(user_id)
            if sids is not None:
                sids.discard(sid)
                if not sids:
                    del self._local[user_id]

    def local_sockets(self, user_id: str) -> int:
        return len(self._local.get(user_id, ()))

    #: This process's id in ``locate``'s answers (and in Redis members).
    process_id = "local"

    def online(self, user_ids: Iterable[str]) -> set[str]:
        """The subset of ``user_ids`` with at least one socket anywhere."""
        return set(self.locate(user_ids))

    def locate(self, user_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        """The processes holding a socket of each of ``user_ids`` that has one anywhere."""
        here = frozenset({self.process_id})
        return {user: here for user in user_ids if self._local.get(user)}

    def socket_count(self) -> int:
        return sum(len(sids) for sids in list(self._local.values()))

    def user_count(self) -> int:
        return len(self._local)

    def heartbeat(self) -> None:
        """Nothing to refresh in memory."""

    def clear(self) -> None:
        with self._lock:
            self._local.clear()


class RedisPresence(Presence):
    """Presence shared by every process through Redis, with expiring entries."""

    def __init__(
        self,
        app: Flask,
        client: redis.Redis,
        prefix: str,
        ttl: int,
        receiving: Callable[[], bool] = lambda: True,
        process_id: str | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        #: Adds and removals of concurrent connects and disconnects share one pipeline; each
        #: caller still waits for its own (a mass disconnect was 10,000 ZREMs, one per greenlet,
        #: and timed out waiting for the pool).
        self._writes: Batcher[tuple[bool, str, str], None] = Batcher(
            app, "presence-writes", self._write_batch, MAX_WRITES
        )
        #: Whether pushes published by other processes reach this process (see the module doc).
        self.receiving = receiving
        self.prefix = prefix
        self.ttl = ttl
        self.process_id = process_id or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        #: One script call per ``LOCATE_USERS`` users on one Redis; a Redis Cluster keeps the
        #: pipeline (a script's keys must share a slot).
        single = isinstance(client, redis.Redis)
        self._locate_script: Script | None = (
            client.register_script(LOCATE_SCRIPT) if single else None
        )
        #: The same for the heartbeat (one call per ``HEARTBEAT_USERS`` users) and for the
        #: adds and removals of the moment.
        self._heartbeat_script: Script | None = (
            client.register_script(HEARTBEAT_SCRIPT) if single else None
        )
        self._writes_script: Script | None = (
            client.register_script(WRITES_SCRIPT) if single else None
        )

    def _key(self, user_id: str) -> str:
        return f"{self.prefix}:presence:{user_id}"

    def _member(self, sid: str) -> str:
        return f"{self.process_id}|{sid}"

    def add(self, user_id: str, sid: str) -> None:
        super().add(user_id, sid)
        if not self.receiving():
            log.warning("presence: message queue not listening, %s is online here only", user_id)
            return
        self._writes.run((True, user_id, sid))

    def _write_batch(
        self, _held: HeldConnection, writes: Sequence[tuple[bool, str, str]]
    ) -> list[None]:
        """One call (a script on one Redis, a pipeline on a cluster) for the adds and removals
        of the moment, in their order."""
        expires = time.time() + self.ttl
        try:
            script = self._writes_script
            if script is not None:
                args: list[Any] = [repr(expires), self.ttl * 2]
                args.extend(
                    f"{'+' if adding else '-'}{self._member(sid)}" for adding, _, sid in writes
                )
                script(keys=[self._key(user_id) for _, user_id, _ in writes], args=args)
            else:
                pipe = self.client.pipeline(transaction=False)
                for adding, user_id, sid in writes:
                    key = self._key(user_id)
                    if adding:
                        pipe.zadd(key, {self._member(sid): expires})
                        pipe.expire(key, self.ttl * 2)
                    else:
                        pipe.zrem(key, self._member(sid))
                pipe.execute()
        except redis.RedisError:
            added = sum(adding for adding, _, _ in writes)
            log.warning(
                "presence: Redis unavailable; %d sockets known online to this process only, "
                "%d departures left to expire by themselves",
                added,
                len(writes) - added,
            )
        return [None for _ in writes]

    def remove(self, user_id: str, sid: str) -> None:
        super().remove(user_id, sid)
        self._writes.run((False, user_id, sid))

    def locate(self, user_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        """The unexpired members' process ids, per user: one script call per ``LOCATE_USERS``
        users on one Redis, one pipeline of ZRANGEBYSCORE on a Redis Cluster.

        Users with a socket here are looked up too: they may have others elsewhere. If Redis
        fails, this process's own sockets are the answer (the others' pushes then wait as
        ``pending``, never lost).
        """
        users = list(dict.fromkeys(user_ids))
        local = super().locate(users)
        if not users:
            return local
        now = time.time()
        try:
            script = self._locate_script
            if script is not None:
                answers = self._scripted(script, users, now)
            else:
                answers = self._pipelined(users, now)
        except redis.RedisError:
            log.warning("presence: Redis unavailable, answering from this process's sockets")
            return local
        found: dict[str, frozenset[str]] = {}
        for user, processes in zip(users, answers, strict=True):
            if user in local:
                processes.add(self.process_id)
            if processes:
                found[user] = frozenset(processes)
        return found

    def _pipelined(self, users: list[str], now: float) -> list[set[str]]:
        pipe = self.client.pipeline(transaction=False)
        for user in users:
            pipe.zrangebyscore(self._key(user), now, "+inf")
        return [
            {bytes(m).partition(b"|")[0].decode() for m in members} for members in pipe.execute()
        ]

    def _scripted(self, script: Script, users: list[str], now: float) -> list[set[str]]:
        answers: list[set[str]] = []
        for start in range(0, len(users), LOCATE_USERS):
            keys = [self._key(user) for user in users[start : start + LOCATE_USERS]]
            found = json.loads(script(keys=keys, args=[repr(now)]))
            answers.extend(set(processes) for processes in found)
        return answers

    def heartbeat(self) -> None:
        """Push this process's entries' expiry forward and drop expired members of its users."""
        if not self.receiving():
            log.warning("presence: message queue not listening, entries left to expire")
            return
        with self._lock:
            snapshot = {user: list(sids) for user, sids in self._local.items()}
        users = list(snapshot.items())
        try:
            for start in range(0, len(users), HEARTBEAT_USERS):
                if start:
                    time.sleep(0)  # let the loop run between pipelines
                self._refresh(dict(users[start : start + HEARTBEAT_USERS]))
        except redis.RedisError:
            log.warning("presence: heartbeat failed, Redis unavailable")

    def _refresh(self, snapshot: dict[str, list[str]]) -> None:
        """One heartbeat call (a script on one Redis, a pipeline on a cluster) for some users'
        sockets, then their ghosts taken out."""
        now = time.time()
        script = self._heartbeat_script
        if script is not None:
            args: list[Any] = [repr(now + self.ttl), repr(now), self.ttl * 2]
            for sids in snapshot.values():
                args.append(len(sids))
                args.extend(self._member(sid) for sid in sids)
            script(keys=[self._key(user) for user in snapshot], args=args)
        else:
            pipe = self.client.pipeline(transaction=False)
            for user, sids in snapshot.items():
                key = self._key(user)
                pipe.zadd(key, {self._member(sid): now + self.ttl for sid in sids})
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.expire(key, self.ttl * 2)
            pipe.execute()
        # A socket that left while the call was on its way may have had its ZREM land
        # before our ZADD, which put it back: a ghost counted online for a whole TTL, whose
        # notifications would be recorded delivered and pushed to nobody. Take those out.
        with self._lock:
            ghosts = {
                user: [sid for sid in sids if sid not in self._local.get(user, ())]
                for user, sids in snapshot.items()
            }
        ghosts = {user: sids for user, sids in ghosts.items() if sids}
        if ghosts:
            pipe = self.client.pipeline(transaction=False)
            for user, sids in ghosts.items():
                pipe.zrem(self._key(user), *[self._member(sid) for sid in sids])
            pipe.execute()

    def clear(self) -> None:
        """Remove this process's entries (clean shutdown)."""
        with self._lock:
            snapshot = {user: list(sids) for user, sids in self._local.items()}
        try:
            pipe = self.client.pipeline(transaction=False)
            for user, sids in snapshot.items():
                pipe.zrem(self._key(user), *[self._member(sid) for sid in sids])
            pipe.execute()
        except redis.RedisError:
            log.warning("presence: could not remove entries at shutdown; they will expire")
        super().clear()


def make_presence(app: Flask, client: Client | None, process_id: str) -> Presence:
    """Presence in Redis (shared by every process) when there is a client, else this process's."""
    if client is None:
        return Presence()
    return RedisPresence(
        app,
        client,  # type: ignore[arg-type]
        app.config["REDIS_PREFIX"],
        app.config["PRESENCE_TTL"],
        message_queue.receiving,
        process_id,
    )


def presence() -> Presence:
    return services().presence
