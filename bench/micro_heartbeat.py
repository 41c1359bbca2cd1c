"""CPU of the presence heartbeat, pipeline by pipeline: under gevent a pipeline gives the loop
back only while it waits for Redis, so its CPU time (packing the commands, parsing the answers)
is the longest it can hold the loop. 1,000 users is the latency scenario's count; the bound
(5 ms, the loop-hold target of issue 11) is checked here, not in a timed test. Needs Redis on
127.0.0.1 and the embedded SQLite profile's defaults only.

    .venv/bin/python -W ignore -m bench.micro_heartbeat [--users 1000] [--beats 5]
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

from app import create_app
from app.services.presence import HEARTBEAT_USERS, RedisPresence, presence

HOLD_BOUND_MS = 5.0


def watch(client: Any, spent: list[float]) -> None:
    """Each pipeline of ``client`` appends its CPU seconds, from its making to its last answer."""
    real_pipeline = client.pipeline

    def watching(*args: Any, **kwargs: Any) -> Any:
        pipe = real_pipeline(*args, **kwargs)
        execute, started = pipe.execute, time.thread_time()

        def watched() -> Any:
            try:
                return execute()
            finally:
                spent.append(time.thread_time() - started)

        pipe.execute = watched
        return pipe

    client.pipeline = watching


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--beats", type=int, default=5)
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
        for i in range(args.users):
            tracker.add(f"hb-{i}", f"sid-{i}")
        spent: list[float] = []
        try:
            tracker.heartbeat()  # warm: the first one pays redis-py's first-use costs
            watch(tracker.client, spent)
            for _ in range(args.beats):
                tracker.heartbeat()
        finally:
            tracker.clear()
    worst = max(spent) * 1000
    verdict = "met" if worst < HOLD_BOUND_MS else "MISSED"
    print(
        f"{args.users} users, {args.beats} beats, {len(spent)} pipelines of <= {HEARTBEAT_USERS}"
        f" users: CPU per pipeline median {sorted(spent)[len(spent) // 2] * 1000:.2f} ms,"
        f" max {worst:.2f} ms (bound {HOLD_BOUND_MS} ms: {verdict})"
    )


if __name__ == "__main__":
    main()
