"""Scenario: ``kill -9`` of one master of the Redis Cluster under load (3 masters, 3 replicas,
``tests/e2e/redis_cluster.py``; cluster-node-timeout 2 s).

The master killed is the one that owns the first process's own channel: that process's listener
loses its subscription, a third of the presence and limit keys become unreachable until the
master's replica takes over. Meanwhile sends are still stored and acknowledged (presence falls
back to the process's own sockets, limits fail open), ``/health`` says 503 naming Redis; after
the failover it is 200 again by itself, pushes across processes resume. Every acknowledged send
is stored once and reaches its recipient, live or after a reconnect with ``lastId``.
"""

from __future__ import annotations

import time
import uuid

from redis.cluster import RedisCluster

from tests.conftest import Rows, wait_until
from tests.e2e.redis_cluster import RedisClusterProcesses
from tests.e2e.test_routing import process_of
from tests.faults.conftest import StartServer, newest_id
from tests.faults.load import (
    Fleet,
    Ledger,
    WebhookLoad,
    assert_outage_reported,
    health_is,
    pushed_across,
)


def test_kill_9_of_a_master_loses_nothing_and_heals_after_the_failover(
    start_server: StartServer,
    redis_cluster: RedisClusterProcesses,
    cluster_db: RedisCluster,
    fleet: Fleet,
    ledger: Ledger,
    rows: Rows,
    prefix: str,
) -> None:
    settings = {"REDIS_URL": redis_cluster.url, "REDIS_PREFIX": prefix}
    # No error is allowed in their logs: a lost master is an outage that warnings describe.
    first, second = start_server(**settings), start_server(**settings)
    fleet.baseline = newest_id(rows)
    tag = uuid.uuid4().hex[:6]
    users = [f"failover-{i}-{tag}" for i in range(8)]
    for i, user in enumerate(users):
        fleet.connect(user, first if i % 2 else second)
    first_id = process_of(cluster_db, prefix, users[1])
    owner = cluster_db.get_node_from_key(f"{prefix}:socketio:to:{first_id}")
    assert owner.port in redis_cluster.masters()

    load = WebhookLoad(ledger, [first, second], users, threads=2, interval=0.02)
    try:
        assert wait_until(lambda: len(ledger.acked) >= 60, 15)
        redis_cluster.kill(owner.port)
        killed_at = time.monotonic()

        assert_outage_reported(first, second, "redis", timeout=10)
        acked_at_kill = len(ledger.acked)
        assert wait_until(lambda: len(ledger.acked) >= acked_at_kill + 20, 10), "sends stopped"

        assert wait_until(lambda: health_is(200, first, second, timeout=10), 30)
        healthy_after = time.monotonic() - killed_at
        assert owner.port not in redis_cluster.masters()

        # A push across processes reaches alice on the first process again.
        alice = users[1]

        assert wait_until(lambda: pushed_across(ledger, fleet, second, alice), 20, interval=0.2)
        across_after = time.monotonic() - killed_at
        time.sleep(1)
    finally:
        load.stop()
        # The node comes back as a replica of its successor: the session's cluster is whole.
        redis_cluster.start_node(owner.port)
        redis_cluster.wait_ok()

    acked = ledger.acked_ids()
    live = fleet.reconnect_everyone(users, second, acked)
    assert not ledger.refused, ledger.refused
    ledger.verify(
        rows("notifications"),
        fleet.delivered(),
        delivered_before_the_last_reconnect=live,
        healthy_after_kill_s=round(healthy_after, 2),
        pushes_across_after_kill_s=round(across_after, 2),
    )
