"""CPU of the presence heartbeat, call by call: under gevent a heartbeat call (a script call on
one Redis, a pipeline on a cluster) gives the loop back only while it waits for Redis, so its
CPU time (packing the arguments, parsing the answer) is the longest it can hold the loop.
1,000 users is the latency scenario's count; the bound (5 ms, the loop-hold aim of issue 11) is
checked here, not in a timed test. Needs Redis on 127.0.0.1 (the embedded database is enough).

    .venv/bin/python -W ignore -m bench.micro_heartbeat [--users 1000] [--beats 5] [--pipeline]

``--pipeline`` times the cluster's way (one pipeline of three commands per user) on one Redis.
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

from app import create_app
from app.services.presence import HEARTBEAT_USERS, RedisPresence, presence

HOLD_BOUND_MS = 5.0


def watch(tracker: RedisPresence, spent: list[float]) -> None:
    """Each heartbeat call of ``tracker`` (``_refresh``) appends its CPU seconds."""
    refresh = tracker._refresh

    def watched(snapshot: Any) -> None:
        started = time.thread_time()
        try:
            refresh(snapshot)
        finally:
            spent.append(time.thread_time() - started)

    tracker._refresh = watched  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--beats", type=int, default=5)
    parser.add_argument("--pipeline", action="store_true")
    args = parser.parse_args()
    env = {
        "APP_ENV": "development",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "REDIS_PREFIX": f"notify-bench-heartbeat-{uuid.uuid4().hex[:8]}",
        "MESSAGE_QUEUE": "0",
        "PRESENCE_TTL": "30",
        "LOG_LEVEL": "WARNING",
    }
    app = create_app(None, env)
    with app.app_context():
        tracker = presence()
        assert isinstance(tracker, RedisPresence)  # noqa: S101 - REDIS_URL is set above
        if args.pipeline:
            tracker._heartbeat_script = None
        for i in range(args.users):
            tracker.add(f"hb-{i}", f"sid-{i}")
        spent: list[float] = []
        try:
            tracker.heartbeat()  # warm: the first one pays redis-py's first-use costs
            watch(tracker, spent)
            for _ in range(args.beats):
                tracker.heartbeat()
        finally:
            tracker.clear()
    worst = max(spent) * 1000
    verdict = "met" if worst < HOLD_BOUND_MS else "MISSED"
    way = "pipelines" if args.pipeline else "script calls"
    print(
        f"{args.users} users, {args.beats} beats, {len(spent)} {way} of <= {HEARTBEAT_USERS}"
        f" users: CPU per call median {sorted(spent)[len(spent) // 2] * 1000:.2f} ms,"
        f" max {worst:.2f} ms (bound {HOLD_BOUND_MS} ms: {verdict})"
    )


if __name__ == "__main__":
    main()
