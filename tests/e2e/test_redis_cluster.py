"""The cross-process suite on a real Redis Cluster (3 masters, 3 replicas; see
``tests/e2e/redis_cluster.py``): the tests of ``test_cluster`` and ``test_routing`` that do not
watch the wire, run here with ``REDIS_URL=redis+cluster://...``, plus what only a cluster has:
pushes on shard channels, limits with hash-tagged keys, a write-only emitter on one node.
"""

from __future__ import annotations

import pytest
from redis.cluster import RedisCluster

from tests.conftest import wait_until
from tests.e2e import servers
from tests.e2e.clients import Listen, Listener, post_webhook
from tests.e2e.redis_cluster import RedisClusterProcesses
from tests.e2e.servers import StartServer
from tests.e2e.test_cluster import (  # noqa: F401 - collected again, on the cluster
    cluster,
    connect_race,
    created,
    emit_from_another_program,
    new_user,
    test_a_killed_process_stops_counting_its_users_within_the_presence_ttl,
    test_a_webhook_reaches_every_socket_of_the_user_on_every_process,
    test_an_offline_user_gets_pending_notifications_on_connect_over_polling,
    test_health_reports_database_and_redis_ok_from_a_running_server,
    test_no_notification_is_lost_while_its_recipient_connects,
    test_presence_is_shared_across_processes,
    test_send_notification_on_one_process_reaches_the_recipient_on_another,
    test_sending_through_reconnections_with_last_id_loses_nothing,
    test_sigterm_takes_the_process_users_offline_at_once_and_logs_their_disconnects,
)
from tests.e2e.test_revocation import old_token, refusal, revoke
from tests.e2e.test_routing import (  # noqa: F401 - collected again, on the cluster
    listener_received,
    mixed,
    moving_race,
    process_of,
    test_a_socket_hopping_between_processes_with_last_id_loses_nothing,
    test_no_notification_is_lost_while_its_recipient_moves_between_processes,
    test_no_notification_is_lost_while_its_recipient_moves_during_a_rolling_deploy,
)
from tests.faults.test_redis_outage import anonymous_calls

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]


@pytest.fixture
def server_base_env(
    server_base_env: dict[str, str],
    redis_cluster: RedisClusterProcesses,
) -> dict[str, str]:
    return server_base_env | {"REDIS_URL": redis_cluster.url}


@pytest.fixture
def redis_db(cluster_db: RedisCluster) -> RedisCluster:
    """The cluster, for the tests of test_cluster and test_routing collected again here."""
    return cluster_db


def test_pushes_travel_on_the_shard_channel_of_the_process_that_holds_the_recipient(
    start_server: StartServer,
    listen: Listen,
    redis_db: RedisCluster,
    prefix: str,
) -> None:
    first, second, bystander = start_server(), start_server(), start_server()
    alice = new_user("alice")
    alice_on_first = listen(first, alice)
    first_id = process_of(redis_db, prefix, alice)
    inbox = f"{prefix}:socketio:to:{first_id}"
    # The listener subscribed (SSUBSCRIBE) at the master that owns its channel's slot.
    owner = redis_db.get_node_from_key(inbox)
    shard_channels = redis_db.get_redis_connection(owner).execute_command("PUBSUB SHARDCHANNELS")
    assert inbox in shard_channels

    sent = [created(post_webhook(second, alice, f"across {i}")) for i in range(3)]

    assert [n["status"] for n in sent] == ["delivered"] * 3
    assert alice_on_first.wait_for([n["id"] for n in sent]) == set()
    assert listener_received(first) == {"own": 3, "broadcast": 0}
    assert listener_received(bystander) == {"own": 0, "broadcast": 0}


def test_limits_count_across_processes_on_a_cluster(start_server: StartServer) -> None:
    settings = {"HTTP_RATE_LIMIT_MAX": "6"}
    first, second = start_server(**settings), start_server(**settings)
    answers = anonymous_calls(first, 3) + anonymous_calls(second, 4)
    assert answers[:6] == [401] * 6
    assert answers[6] == 429


def test_a_write_only_emitter_connected_to_one_node_reaches_a_client(
    start_server: StartServer,
    listen: Listen,
    prefix: str,
    redis_cluster: RedisClusterProcesses,
) -> None:
    """A classic PUBLISH on any node reaches the subscribers of every node, so an emitter of
    another program needs only one node's address."""
    server = start_server()
    alice = new_user("alice")
    listener = listen(server, alice)
    payload = {"id": 987654322, "recipientId": alice, "message": "from a worker"}
    node_url = f"redis://127.0.0.1:{redis_cluster.ports[-1]}/0"  # a replica, even

    emit_from_another_program(node_url, prefix, alice, payload)
    assert listener.wait_for([payload["id"]]) == set()


def test_presence_keys_spread_over_the_slots(
    start_server: StartServer, listen: Listen, redis_db: RedisCluster, prefix: str
) -> None:
    """Users are drawn until their keys' slots fall on all three masters (12 random users miss
    one master 2 % of the time): each master then holds presence of users online."""
    server = start_server()

    def owner(user: str) -> str:
        return str(redis_db.get_node_from_key(f"{prefix}:presence:{user}").name)

    users = [new_user(f"spread{i}") for i in range(6)]
    while len({owner(user) for user in users}) < 3 and len(users) < 60:
        users.append(new_user(f"spread{len(users)}"))
    for user in users:
        listen(server, user)
    slots = {redis_db.keyslot(f"{prefix}:presence:{user}") for user in users}
    assert len(slots) == len(users)
    assert all(redis_db.exists(f"{prefix}:presence:{user}") for user in users)


def test_a_revocation_ends_the_users_sockets_on_every_process_of_a_cluster(
    cluster: tuple[servers.Server, servers.Server],  # noqa: F811 - the fixture
) -> None:
    """The control channel is a sharded one on a cluster: SPUBLISH counts every process that
    listens, so the answer counts both processes' sockets."""
    first, second = cluster
    user = new_user("revoked")
    token = old_token(user)
    sockets = [Listener(server.url, token) for server in (first, second)]
    try:
        assert revoke(first, user) == {"success": True, "disconnected": 2}
        assert all(wait_until(lambda s=s: not s.client.connected, 5) for s in sockets)
        assert refusal(second, token) == {
            "message": "unauthorized",
            "data": {"code": "token_revoked"},
        }
    finally:
        for listener in sockets:
            listener.disconnect()
