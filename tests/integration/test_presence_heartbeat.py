"""The presence heartbeat refreshes every entry, a bounded number of users per pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from app.services import presence as presence_module
from app.services.presence import HEARTBEAT_USERS, RedisPresence, presence

pytestmark = [pytest.mark.integration, pytest.mark.mariadb]


def test_heartbeat_of_many_users_is_split_into_short_pipelines(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(MESSAGE_QUEUE="0", PRESENCE_TTL="30")
    users = HEARTBEAT_USERS * 2 + 50
    with app.app_context():
        tracker = presence()
        assert isinstance(tracker, RedisPresence)
        for i in range(users):
            tracker.add(f"hb-{i}", f"sid-{i}")
        sizes: list[int] = []
        real_pipeline = tracker.client.pipeline

        def counting_pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = real_pipeline(*args, **kwargs)
            execute = pipe.execute

            def counted() -> Any:
                sizes.append(len(pipe.command_stack))
                return execute()

            pipe.execute = counted
            return pipe

        tracker.client.pipeline = counting_pipeline  # type: ignore[method-assign]
        before = time.time()
        try:
            tracker.heartbeat()
        finally:
            tracker.client.pipeline = real_pipeline  # type: ignore[method-assign]
        # Three commands per user (ZADD, ZREMRANGEBYSCORE, EXPIRE), at most HEARTBEAT_USERS each.
        assert sizes and max(sizes) <= 3 * HEARTBEAT_USERS
        assert sum(sizes) == 3 * users
        for i in (0, HEARTBEAT_USERS, users - 1):
            score = tracker.client.zscore(tracker._key(f"hb-{i}"), tracker._member(f"sid-{i}"))
            assert score is not None and score >= before + 30 - 1
        tracker.clear()
    assert presence_module.MAX_WRITES <= 256
