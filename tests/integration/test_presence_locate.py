"""Locating many users on one Redis: one script call per ``LOCATE_USERS`` users, the same answer
as a ZRANGEBYSCORE per user."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask

from app.services import presence as presence_module
from tests.integration.presence_helpers import redis_presence, watched_pipelines

pytestmark = [pytest.mark.integration, pytest.mark.mariadb]


def test_locating_many_users_is_one_call_per_thousand_with_the_pipelines_answer(
    make_app: Callable[..., Flask],
) -> None:
    with redis_presence(make_app) as tracker:
        client = tracker.client
        now = time.time()
        users = [f"loc-{i}" for i in range(1007)]
        expected: dict[str, frozenset[str]] = {}
        for i, user in enumerate(users):
            key = tracker._key(user)
            if i % 5 == 0:
                continue  # no entry at all
            if i % 5 == 1:  # expired only
                client.zadd(key, {f"gone-{i}|s1": now - 5})
                continue
            members = {f"r-a-{i % 3}|s{i}": now + 30, f"r-a-{i % 3}|t{i}": now + 30}
            if i % 5 == 3:  # a second process, one expired member of a third, a bare member
                members |= {f"r-b|s{i}": now + 30, f"r-c|s{i}": now - 1, "nobar": now + 30}
            client.zadd(key, members)
            expected[user] = frozenset(m.partition("|")[0] for m, s in members.items() if s > now)
        tracker.add(users[0], "here-1")  # a socket of this process only
        expected[users[0]] = frozenset({tracker.process_id})
        tracker.add(users[2], "here-2")  # here and elsewhere
        expected[users[2]] = expected[users[2]] | {tracker.process_id}

        calls: list[tuple[Any, ...]] = []
        piped: list[int] = []
        real_execute = client.execute_command

        def counting_execute(*args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            return real_execute(*args, **kwargs)

        client.execute_command = counting_execute  # type: ignore[method-assign]
        try:
            with watched_pipelines(client, lambda commands, _: piped.append(commands)):
                found = tracker.locate(users + users[:3])  # repeats count once
        finally:
            client.execute_command = real_execute  # type: ignore[method-assign]
        assert found == expected
        # Two script calls (1,000 users and 7), no pipeline: a ZRANGEBYSCORE per user before.
        assert sum(piped) == 0
        assert [args[0] for args in calls] == ["EVALSHA", "EVALSHA"]
        assert calls[0][2] == presence_module.LOCATE_USERS == 1000  # the keys named
        at = time.time()
        script = tracker._locate_script
        assert script is not None
        assert tracker._scripted(script, users, at) == tracker._pipelined(users, at)
        tracker.remove(users[0], "here-1")
        tracker.remove(users[2], "here-2")
        client.delete(*[tracker._key(user) for user in users])


def test_locate_answers_from_this_process_when_the_script_fails(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    with redis_presence(make_app) as tracker:
        tracker.add("fail-1", "sid-1")

        def failing(*_args: Any, **_kwargs: Any) -> Any:
            raise redis.ConnectionError("down")

        monkeypatch.setattr(tracker, "_locate_script", failing)
        assert tracker.locate(["fail-1", "fail-2"]) == {"fail-1": frozenset({tracker.process_id})}
        tracker.remove("fail-1", "sid-1")
