"""The presence tests' Redis presence, and a watch on its client's pipelines."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask

from app.services.presence import RedisPresence, presence


@contextlib.contextmanager
def redis_presence(make_app: Callable[..., Flask]) -> Iterator[RedisPresence]:
    """This process's Redis presence, in the context of an app of its own (no message queue,
    entries kept 30 s)."""
    app = make_app(MESSAGE_QUEUE="0", PRESENCE_TTL="30")
    with app.app_context():
        tracker = presence()
        assert isinstance(tracker, RedisPresence)
        yield tracker


@contextlib.contextmanager
def watched_pipelines(client: Any, seen: Callable[[int, float], None]) -> Iterator[None]:
    """Each pipeline ``execute`` of ``client`` meanwhile calls ``seen(commands, cpu_seconds)``:
    the commands it sent, and the thread's CPU time from the pipeline's making to its last
    answer parsed (under gevent, the longest it can hold the loop)."""
    real_pipeline = client.pipeline

    def watching(*args: Any, **kwargs: Any) -> Any:
        pipe = real_pipeline(*args, **kwargs)
        execute = pipe.execute
        started = time.thread_time()

        def watched() -> Any:
            commands = len(pipe.command_stack)  # execute empties it
            try:
                return execute()
            finally:
                seen(commands, time.thread_time() - started)

        pipe.execute = watched
        return pipe

    client.pipeline = watching
    try:
        yield
    finally:
        client.pipeline = real_pipeline
