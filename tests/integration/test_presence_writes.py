"""The adds and removals of concurrent connects and disconnects go to Redis together, in their
order: one script call on one Redis, one pipeline on a Redis Cluster (run here on one Redis)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from flask import Flask

from tests.integration.presence_helpers import redis_presence, watched_pipelines

pytestmark = [pytest.mark.integration, pytest.mark.mariadb]


@pytest.mark.parametrize("way", ["script", "pipeline"])
def test_a_batch_of_adds_and_removals_lands_in_order(
    make_app: Callable[..., Flask], way: str
) -> None:
    with redis_presence(make_app) as tracker:
        if way == "pipeline":
            tracker._writes_script = None  # the cluster's way
        client = tracker.client
        writes = [
            (True, "ann", "s1"),
            (True, "ann", "s2"),
            (False, "ann", "s1"),
            (True, "bob", "s3"),
            (False, "bob", "s3"),
            (True, "bob", "s3"),  # back again: the last write wins
            (True, "cy", "s4"),
            (False, "cy", "s4"),
        ]
        commands: list[int] = []
        before = time.time()
        with watched_pipelines(client, lambda sent, _: commands.append(sent)):
            tracker._write_batch(None, writes)  # type: ignore[arg-type]
        assert sum(commands) == (13 if way == "pipeline" else 0)  # ZADD + EXPIRE, or ZREM

        def members(user: str) -> dict[str, float]:
            return {
                m.decode(): s for m, s in client.zrange(tracker._key(user), 0, -1, withscores=True)
            }

        assert set(members("ann")) == {tracker._member("s2")}
        assert set(members("bob")) == {tracker._member("s3")}
        assert members("cy") == {}
        assert all(score >= before + 30 - 1 for score in members("ann").values())
        assert 30 < client.ttl(tracker._key("ann")) <= 60
        tracker.clear()
