"""A throwaway ``redis-server`` of one test, on a free loopback port, that the test may stop.

The shared Redis on 6379 serves other people's tests and is never stopped; this one is real
Redis all the same, started without persistence, so a restart comes back empty, as a restarted
cache does.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import redis

from tests.e2e.servers import free_port

START_DEADLINE = 10.0


class PrivateRedis:
    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start on the same port as before and wait until it answers PING."""
        with (self.log_dir / f"redis-{self.port}.log").open("ab") as log:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
                + ["--save", "", "--appendonly", "no", "--daemonize", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        end = time.monotonic() + START_DEADLINE
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    if time.monotonic() > end or self.proc.poll() is not None:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM, as a service manager does); its data is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=2)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
