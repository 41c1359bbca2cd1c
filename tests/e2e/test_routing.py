"""Targeted delivery at real processes: a push goes only to the processes that hold its
recipient, the races of ``test_cluster`` across processes, and a rolling deploy in which one
process routes and the other does not (``ROUTED_DELIVERY=0``, the behaviour before routing).

What goes over Redis is watched with a pattern subscription on the test's channels.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_until
from tests.e2e import servers
from tests.e2e.clients import Listen, post_webhook, webhook_at
from tests.e2e.servers import StartServer
from tests.e2e.test_cluster import (  # noqa: F401 - connect_race: the fixture
    ConnectRace,
    connect_race,
    created,
    new_user,
    presence_members,
    reconnect_race,
)

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]


class Wire:
    """Every message published on the test's Socket.IO channels, by channel: a pattern
    subscription sees the broadcast channel and each process's own (classic PUBLISH)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.prefix = prefix
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe(f"{prefix}:socketio*")
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped:
            message = self.pubsub.get_message(timeout=0.1)
            if message and message["type"] == "pmessage":
                with self.lock:
                    self.messages.append((message["channel"], json.loads(message["data"])))

    def settle(self) -> list[tuple[str, dict[str, Any]]]:
        """What was published so far, once nothing more arrives for a moment."""
        count = -1
        while True:
            time.sleep(0.3)
            with self.lock:
                if len(self.messages) == count:
                    return list(self.messages)
                count = len(self.messages)

    def clear(self) -> None:
        self.settle()
        with self.lock:
            self.messages.clear()

    def close(self) -> None:
        self.stopped = True
        self.thread.join(2)
        self.pubsub.close()


@pytest.fixture
def wire(redis_db: redis.Redis, prefix: str) -> Iterator[Wire]:
    watcher = Wire(redis_db, prefix)
    yield watcher
    watcher.close()


def process_of(redis_db: redis.Redis, prefix: str, user: str) -> str:
    """The process id of the user's only presence entry."""
    members = wait_until(lambda: presence_members(redis_db, prefix, user), 5)
    assert len(members) == 1, members
    return str(members[0]).partition("|")[0]


def listener_received(server: servers.Server) -> dict[str, float]:
    """``notify_message_queue_received_total`` of one process, by channel."""
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    return {
        sample.labels["channel"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "notify_message_queue_received"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def ids_in(message: dict[str, Any]) -> list[int]:
    return [item["data"][0]["id"] for item in message["notify_batch"]]


def test_a_push_goes_only_to_the_process_that_holds_its_recipient(
    start_server: StartServer, listen: Listen, redis_db: redis.Redis, prefix: str, wire: Wire
) -> None:
    first, second, bystander = start_server(), start_server(), start_server()
    alice, nobody = new_user("alice"), new_user("offline")
    alice_on_first = listen(first, alice)
    first_id = process_of(redis_db, prefix, alice)
    assert first_id.startswith("r-")
    wire.clear()

    remote = created(post_webhook(second, alice, "from the second process"))
    offline = created(post_webhook(second, nobody, "to nobody"))
    local = created(post_webhook(first, alice, "from alice's own process"))

    assert (remote["status"], offline["status"], local["status"]) == (
        "delivered",
        "pending",
        "delivered",
    )
    assert alice_on_first.wait_for([remote["id"], local["id"]]) == set()
    published = wire.settle()
    # One PUBLISH, on the first process's own channel, with the remote push only: the offline
    # user cost none, the local push none, and nothing went on the broadcast channel.
    assert [(channel, ids_in(message)) for channel, message in published] == [
        (f"{prefix}:socketio:to:{first_id}", [remote["id"]])
    ]
    assert listener_received(first)["own"] == 1
    assert listener_received(bystander) == {"own": 0, "broadcast": 0}
    assert listener_received(second) == {"own": 0, "broadcast": 0}


def test_one_publish_per_target_process_per_batch(
    start_server: StartServer, listen: Listen, redis_db: redis.Redis, prefix: str, wire: Wire
) -> None:
    first, second, sender = start_server(), start_server(), start_server()
    users = [new_user(f"u{i}") for i in range(6)]
    sockets = [listen(first if i % 2 else second, user) for i, user in enumerate(users)]
    first_id = process_of(redis_db, prefix, users[1])
    second_id = process_of(redis_db, prefix, users[0])
    wire.clear()

    body = {"recipientIds": users, "message": "to six users on two processes"}
    answer = webhook_at(sender.url, body)
    assert answer.status_code == 201, answer.text
    sent = answer.json()["notifications"]

    for socket, notification in zip(sockets, sent, strict=True):
        assert socket.wait_for([notification["id"]]) == set()
    by_channel = {channel: ids_in(message) for channel, message in wire.settle()}
    assert by_channel == {
        f"{prefix}:socketio:to:{first_id}": [n["id"] for n in sent[1::2]],
        f"{prefix}:socketio:to:{second_id}": [n["id"] for n in sent[0::2]],
    }


def test_notification_read_goes_to_the_users_other_processes_only(
    start_server: StartServer, listen: Listen, redis_db: redis.Redis, prefix: str, wire: Wire
) -> None:
    first, second, bystander = start_server(), start_server(), start_server()
    alice = new_user("alice")
    reader = listen(first, alice)
    other = listen(second, alice)
    second_id = next(
        m.partition("|")[0]
        for m in presence_members(redis_db, prefix, alice)
        if m.partition("|")[2] == other.client.get_sid()
    )
    sent = created(post_webhook(bystander, alice, "read me"))
    assert other.wait_for([sent["id"]]) == set()
    reads: list[Any] = []
    other.client.on("notification_read", reads.append)
    wire.clear()

    ack = reader.call("mark_read", {"ids": [sent["id"]]})

    assert ack["success"] is True, ack
    assert wait_until(lambda: reads, 5) == [{"ids": [sent["id"]]}]
    published = wire.settle()
    assert [channel for channel, _ in published] == [f"{prefix}:socketio:to:{second_id}"]
    assert listener_received(bystander)["own"] == 0


@pytest.fixture
def moving_race(connect_race: ConnectRace) -> Callable[..., None]:  # noqa: F811 - the fixture
    """``moving_race(sender_server, targets)``: ``test_cluster``'s connect race with the
    recipient's socket moving between two processes each round, and webhooks sent to a third
    or to one of them."""

    def race(sender_server: servers.Server, targets: tuple[servers.Server, servers.Server]) -> None:
        user = new_user("mover")
        connect_race(sender_server, targets, user, most_rounds=120, seconds=20, least_rounds=30)

    return race


def test_no_notification_is_lost_while_its_recipient_moves_between_processes(
    start_server: StartServer, moving_race: Callable[..., None]
) -> None:
    first, second = start_server(), start_server()
    moving_race(first, (first, second))


def test_a_socket_hopping_between_processes_with_last_id_loses_nothing(
    start_server: StartServer, listen: Listen
) -> None:
    """Webhooks never pause; the client connects to one process, then the other, over and
    over, each time with ``lastId`` of the newest id it has seen; a last connection collects
    the rest."""
    first, second = start_server(), start_server()
    reconnect_race(
        first, (first, second), listen, user=new_user("hopper"), most_listeners=80, seconds=10
    )


# A rolling deploy: one process routes, one does not yet. ----------------------------------


@pytest.fixture
def mixed(start_server: StartServer) -> tuple[servers.Server, servers.Server]:
    """An old-style process (every push to everyone) and a routing one."""
    return start_server(ROUTED_DELIVERY="0"), start_server()


def test_a_rolling_deploy_loses_nothing_between_a_routing_and_a_broadcasting_process(
    mixed: tuple[servers.Server, servers.Server],
    listen: Listen,
    redis_db: redis.Redis,
    prefix: str,
    wire: Wire,
) -> None:
    old, new = mixed
    alice, bob, carol = new_user("alice"), new_user("bob"), new_user("carol")
    alice_old, alice_new = listen(old, alice), listen(new, alice)
    bob_old, carol_new = listen(old, bob), listen(new, carol)
    processes = {m.partition("|")[0] for m in presence_members(redis_db, prefix, alice)}
    old_id = next(p for p in processes if not p.startswith("r-"))
    new_id = next(p for p in processes if p.startswith("r-"))
    wire.clear()

    sent = {
        (origin.url, user): created(post_webhook(origin, user, f"{user} via {origin.url}"))
        for origin in (old, new)
        for user in (alice, bob, carol)
    }

    assert all(n["status"] == "delivered" for n in sent.values())
    expect = {
        alice_old: alice,
        alice_new: alice,
        bob_old: bob,
        carol_new: carol,
    }
    for socket, user in expect.items():
        wanted = [n["id"] for (url, to), n in sent.items() if to == user]
        assert socket.wait_for(wanted) == set()
        assert Counter(n["id"] for n in socket.received) == Counter(wanted)  # once each
    channels = Counter(channel for channel, _ in wire.settle())
    # The old process broadcasts all its pushes, as it always did; the new one broadcasts the
    # pushes for users with a socket on the old one (alice, bob: it cannot route to it) and
    # routes nothing to the old process's channel, which nobody listens to.
    assert channels[f"{prefix}:socketio"] == 5  # 3 from the old one, alice and bob from the new
    assert channels[f"{prefix}:socketio:to:{new_id}"] == 0  # the old one cannot route
    assert channels[f"{prefix}:socketio:to:{old_id}"] == 0


def test_no_notification_is_lost_while_its_recipient_moves_during_a_rolling_deploy(
    mixed: tuple[servers.Server, servers.Server], moving_race: Callable[..., None]
) -> None:
    old, new = mixed
    moving_race(new, (old, new))
    moving_race(old, (old, new))
