"""A real Redis Cluster of the tests: 3 masters and 3 replicas of Debian's ``redis-server`` on
loopback, made with ``redis-cli --cluster create``, torn down at the end of the session.

Ports ``TEST_REDIS_CLUSTER_PORT`` .. +5 and their cluster bus ports +10; without that variable
a free run of them is picked at random below the ephemeral range, so two suites on one machine
each get a cluster of their own. ``cluster-node-timeout`` is 2 s, so a killed master's replica
takes over within a few seconds. No persistence; each node's ``nodes.conf`` is kept in its
directory, so a killed node started again rejoins the cluster (as a replica of whoever took its
place).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

BASE_PORT = int(os.environ.get("TEST_REDIS_CLUSTER_PORT", "0"))  # 0: a free run, at random
BUS_OFFSET = 10
NODES = 6
START_DEADLINE = 60.0


class RedisClusterProcesses:
    def __init__(self, directory: Path, base_port: int) -> None:
        self.directory = directory
        self.ports = [base_port + i for i in range(NODES)]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def start_node(self, port: int) -> None:
        node_dir = self.directory / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        with (node_dir / "redis.log").open("ab") as log:
            self.procs[port] = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
                + ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
                + ["--cluster-port", str(port + BUS_OFFSET), "--cluster-node-timeout", "2000"]
                + ["--save", "", "--appendonly", "no", "--dir", str(node_dir)]
                # A replica's first sync at once (the default waits 5 s for more replicas).
                + ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_for(lambda: node(port).ping(), 10)

    def start(self) -> None:
        for port in self.ports:
            self.start_node(port)
        created = subprocess.run(
            ["redis-cli", "--cluster", "create"]
            + [f"127.0.0.1:{p}" for p in self.ports]
            + ["--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout[-2000:]}")
        self.wait_ok()

    def wait_ok(self, deadline: float = START_DEADLINE) -> None:
        """Until every running node says ``cluster_state:ok`` and agrees on 3 masters, and every
        replica is in sync with its master (one that is not could not take over)."""

        def ok() -> bool:
            for port in self.running():
                info = cluster_info(port)
                if info.get("cluster_state") != "ok" or int(info.get("cluster_size", 0)) != 3:
                    return False
                replication = node(port).info("replication")
                if replication["role"] == "slave" and replication["master_link_status"] != "up":
                    return False
            return True

        wait_for(ok, deadline)

    def running(self) -> list[int]:
        return [port for port, proc in self.procs.items() if proc.poll() is None]

    def masters(self) -> list[int]:
        """Ports of the running masters, as the cluster sees them now."""
        ports = []
        for port in self.running():
            with contextlib.suppress(redis.RedisError):
                if node(port).info("replication")["role"] == "master":
                    ports.append(port)
        return ports

    def kill(self, port: int) -> None:
        """``kill -9``: the node gets no chance to hand over anything."""
        proc = self.procs[port]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def client(self) -> RedisCluster:
        return RedisCluster(
            startup_nodes=[ClusterNode("127.0.0.1", p) for p in self.ports],
            decode_responses=True,
            socket_timeout=2,
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def free_base_port() -> int:
    """A base port whose node and bus ports (base .. +5, base+10 .. +15) are all free now."""
    for _ in range(50):
        base = random.randrange(20000, 30000, 20)  # noqa: S311 - not for security
        try:
            for port in [base + i for i in range(NODES)] + [
                base + BUS_OFFSET + i for i in range(NODES)
            ]:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free run of ports for the Redis Cluster")


def node(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, decode_responses=True)


def cluster_info(port: int) -> dict[str, str]:
    info: dict[str, str] = node(port).execute_command("CLUSTER INFO")  # parsed by redis-py
    return info


def wait_for(predicate: object, deadline: float) -> None:
    end = time.monotonic() + deadline
    last: object = None
    while time.monotonic() < end:
        try:
            if predicate():  # type: ignore[operator]
                return
        except (redis.RedisError, OSError) as error:
            last = error
        time.sleep(0.1)
    raise TimeoutError(f"Redis Cluster not ready after {deadline} s ({last!r})")


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """The session's Redis Cluster, started on first use (a couple of seconds). Ports taken by
    someone else between the probe and the start mean another try on other ports."""
    for attempt in range(1, 4):
        cluster = RedisClusterProcesses(
            tmp_path_factory.mktemp("redis-cluster"), BASE_PORT or free_base_port()
        )
        try:
            cluster.start()
        except (TimeoutError, RuntimeError):
            cluster.stop()
            if BASE_PORT or attempt == 3:
                raise
            continue
        try:
            yield cluster
        finally:
            cluster.stop()
        return


@pytest.fixture
def cluster_db(redis_cluster: RedisClusterProcesses) -> Iterator[RedisCluster]:
    """A client of the session's Redis Cluster, closed after the test."""
    client = redis_cluster.client()
    yield client
    client.close()
