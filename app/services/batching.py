"""Group commit: concurrent callers share one worker's transaction instead of one each.

Each ``Batcher`` owns one worker (a greenlet under gevent, a thread otherwise) and one database
connection. A caller hands it an item and waits; the worker takes every item queued by then (up
to ``max_items``) and handles them together: one INSERT and one COMMIT for many sends, instead
of a pool checkout, a pre-ping, the statement, a COMMIT and a reset per send. Under light load a
batch is one item and the only cost is a context switch; under load batches grow by themselves,
with no timer and no added wait. Callers still return only after their own work is committed,
so nothing is acknowledged before it is stored.

The worker ends after ``IDLE_EXIT`` seconds without work (releasing its connection and its app),
and the next caller starts a new one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from flask import Flask

from app.errors import DATABASE_UNAVAILABLE, ServiceUnavailable
from app.extensions import db
from app.models import MYSQL_DIALECTS

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

IDLE_EXIT = 5.0
#: A held connection idle this long is returned to the pool and a pre-pinged one taken instead.
IDLE_RECHECK = 10.0


@dataclass(slots=True)
class Job(Generic[T, R]):
    item: T
    done: threading.Event = field(default_factory=threading.Event)
    result: R | None = None
    error: BaseException | None = None


#: MySQL/MariaDB errors after which InnoDB rolled the transaction back and it may be run again:
#: ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT.
LOCK_CONFLICTS = frozenset({1213, 1205})


class LockConflict(ServiceUnavailable):
    """The transaction lost a lock conflict and was rolled back (a ServiceUnavailable to
    callers that do not run it again)."""


def _mysql_code(error: BaseException) -> int | None:
    args = getattr(getattr(error, "orig", None), "args", ())
    return args[0] if args and isinstance(args[0], int) else None


class HeldConnection:
    """The worker's own connection, reused across batches while it is in use and the pool has
    others to give.

    Any error discards it (a broken connection is never reused); one idle for ``IDLE_RECHECK``
    seconds, or older than the pool's ``pool_recycle``, is replaced by a fresh checkout, which
    the pool pre-pings.
    """

    def __init__(
        self, engine: sa.Engine, recycle: float, isolation_level: str | None = None
    ) -> None:
        self.engine = engine
        self.recycle = recycle
        self.isolation_level = isolation_level
        self.connection: sa.Connection | None = None
        self.opened = self.used = 0.0

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A transaction committed on exit; an unreachable database is a ServiceUnavailable."""
        now = time.monotonic()
        if self.connection is not None and (
            now - self.used > IDLE_RECHECK or now - self.opened > self.recycle
        ):
            self.release()
        try:
            if self.connection is None:
                connection = self.engine.connect()
                if self.isolation_level is not None:
                    connection.execution_options(isolation_level=self.isolation_level)
                self.connection = connection
                self.opened = now
            with self.connection.begin():
                yield self.connection
        except DATABASE_UNAVAILABLE as error:
            self.release()
            if _mysql_code(error) in LOCK_CONFLICTS:
                raise LockConflict() from error
            log.error("database unavailable: %s", type(error).__name__)
            raise ServiceUnavailable() from error
        except BaseException:
            self.release()
            raise
        finally:
            self.used = time.monotonic()
        if self.pool_exhausted():
            self.release()

    def pool_exhausted(self) -> bool:
        """Every connection of the pool is checked out: hand this one back after the batch, so
        that the other workers, the connection-log writer and requests are never starved. A
        process so holds at most ``DB_POOL_LIMIT`` connections, whatever that limit is."""
        pool = self.engine.pool
        size = getattr(pool, "size", None)
        return size is not None and pool.checkedout() >= size()  # type: ignore[attr-defined]

    def transact(self, work: Callable[[sa.Connection], R], attempts: int = 3) -> R:
        """``work(connection)`` in a transaction of its own, run again when InnoDB rolled it
        back for a lock conflict (two batches marking overlapping rows delivered can deadlock;
        ``work`` must be safe to repeat)."""
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as connection:
                    return work(connection)
            except LockConflict:
                if attempt == attempts:
                    log.warning("lock conflict %d times in a row", attempts)
                    raise
        raise AssertionError("unreachable")

    def release(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - a dead connection may fail to close; it is gone
                log.debug("closing a held connection failed", exc_info=True)


#: ``handle(connection, items)`` returns one result per item, in order; an exception as a result
#: fails only that item's caller.
Handler = Callable[[HeldConnection, Sequence[T]], Sequence[Any]]


class Batcher(Generic[T, R]):
    """Runs ``handle`` over batches of items on one worker; ``run(item)`` waits for its result."""

    def __init__(
        self,
        app: Flask,
        name: str,
        handle: Handler[T],
        max_items: int,
        isolation_level: str | None = None,
    ) -> None:
        self.app = app
        self.name = name
        self.handle = handle
        self.max_items = max_items
        #: Of the worker's connection, on MySQL and MariaDB (the others keep their default).
        self.isolation_level = isolation_level
        self._jobs: deque[Job[T, R]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._closing = False

    def run(self, item: T) -> R:
        job: Job[T, R] = Job(item)
        with self._lock:
            self._jobs.append(job)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._worker.start()
        self._wake.set()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def close(self, timeout: float = 5.0) -> None:
        """End the worker once what is queued is done, and give its connection back (an app
        that is thrown away, in tests: its pooled connections can then be disposed of)."""
        self._closing = True
        self._wake.set()
        worker = self._worker
        if worker is not None:
            worker.join(timeout)

    def _work(self) -> None:
        with self.app.app_context():
            options = self.app.config["SQLALCHEMY_ENGINE_OPTIONS"]
            engine = db.engine
            isolation = self.isolation_level if engine.dialect.name in MYSQL_DIALECTS else None
            held = HeldConnection(engine, options.get("pool_recycle", 3600), isolation)
            try:
                while self._next_batches(held):
                    pass
            finally:
                held.release()

    def _next_batches(self, held: HeldConnection) -> bool:
        """Handle everything queued; False when the worker should end (idle, nothing queued)."""
        if not self._wake.wait(IDLE_EXIT) or self._closing:
            with self._lock:
                if not self._jobs:
                    self._worker = None
                    return False
        self._wake.clear()
        while self._jobs:
            batch = [self._jobs.popleft() for _ in range(min(self.max_items, len(self._jobs)))]
            self._finish(batch, held)
        return True

    def _finish(self, batch: list[Job[T, R]], held: HeldConnection) -> None:
        try:
            results = self.handle(held, [job.item for job in batch])
        except ServiceUnavailable:
            results = [ServiceUnavailable() for _ in batch]
        except BaseException as error:  # noqa: BLE001 - every caller must be answered
            log.error("%s: batch of %d failed", self.name, len(batch), exc_info=error)
            results = [error for _ in batch]
        for job, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                job.error = result
            else:
                job.result = result
            job.done.set()
