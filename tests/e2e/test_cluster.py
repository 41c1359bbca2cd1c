"""Real gunicorn processes sharing Redis, real ``python-socketio`` clients: what a deployment does.

Each test starts its servers as the Procfile does (``tests/e2e/servers.py``) on its own Redis
prefix; the rows they write are deleted after the test by the ``app`` fixture's teardown.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
import requests

from app.services.delivery import user_room
from tests.conftest import REDIS_URL, Rows, wait_until
from tests.e2e import servers
from tests.e2e.clients import Listen, Listener, post_webhook
from tests.e2e.servers import StartServer

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]


def new_user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def stored_status(rows: Rows, notification_id: int) -> str | None:
    for row in rows("notifications"):
        if row["id"] == notification_id:
            return str(row["status"])
    return None


def presence_members(redis_db: redis.Redis, prefix: str, user: str) -> list[str]:
    """The user's entries in the shared presence set, expired or not (services.presence)."""
    members: list[str] = redis_db.zrange(f"{prefix}:presence:{user}", 0, -1)
    return members


def unexpired_members(redis_db: redis.Redis, prefix: str, user: str) -> list[str]:
    members: list[str] = redis_db.zrangebyscore(f"{prefix}:presence:{user}", time.time(), "+inf")
    return members


def created(response: Any) -> dict[str, Any]:
    """The notification of a 201 webhook answer (asserting the answer's shape)."""
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["success"] is True
    notification: dict[str, Any] = body["notification"]
    return notification


@pytest.fixture
def cluster(start_server: StartServer) -> tuple[servers.Server, servers.Server]:
    """Two processes on two ports sharing the test's Redis prefix, as behind a balancer."""
    return start_server(), start_server()


def test_health_reports_database_and_redis_ok_from_a_running_server(
    start_server: StartServer,
) -> None:
    server = start_server()
    response = servers.get(server, "/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["redis"] == "ok"
    assert isinstance(body["version"], str)
    assert isinstance(body["uptimeSeconds"], int | float)
    assert response.headers["Content-Type"].startswith("application/json")


def test_a_webhook_reaches_every_socket_of_the_user_on_every_process(
    cluster: tuple[servers.Server, servers.Server], listen: Listen, rows: Rows
) -> None:
    alice, bob = new_user("alice"), new_user("bob")
    alice_everywhere = [listen(server, alice) for server in cluster]
    bob_on_second = listen(cluster[1], bob)

    notification = created(post_webhook(cluster[1], alice, "deploy finished", data={"build": 7}))

    assert notification["status"] == "delivered"
    assert notification["senderId"] is None
    for alice_socket in alice_everywhere:
        assert alice_socket.wait_for([notification["id"]]) == set()
    for alice_socket in alice_everywhere:
        assert alice_socket.received == [notification]
    assert stored_status(rows, notification["id"]) == "delivered"
    assert bob_on_second.received == []


def test_send_notification_on_one_process_reaches_the_recipient_on_another(
    cluster: tuple[servers.Server, servers.Server], listen: Listen, rows: Rows
) -> None:
    first, second = cluster
    alice, bob = new_user("alice"), new_user("bob")
    alice_on_first = listen(first, alice)
    bob_on_second = listen(second, bob)

    ack = bob_on_second.call("send_notification", {"recipientId": alice, "message": "  hi  "})

    assert ack["success"] is True
    notification = ack["notification"]
    assert (notification["recipientId"], notification["senderId"]) == (alice, bob)
    assert (notification["message"], notification["type"]) == ("hi", "message")
    assert notification["status"] == "delivered"
    assert alice_on_first.wait_for([notification["id"]]) == set()
    assert alice_on_first.received == [notification]
    assert stored_status(rows, notification["id"]) == "delivered"
    assert bob_on_second.received == []


EMITTER = """
import json, sys
from flask_socketio import SocketIO

url, channel, room, payload = sys.argv[1:]
SocketIO(message_queue=url, channel=channel).emit("new_notification", json.loads(payload), to=room)
"""


def emit_from_another_program(
    redis_url: str, prefix: str, user: str, payload: dict[str, Any]
) -> None:
    """Run :data:`EMITTER` in a process of its own: one push to ``user``'s room over Redis."""
    emitter = subprocess.run(
        [str(servers.PYTHON), "-c", EMITTER, redis_url, f"{prefix}:socketio"]
        + [user_room(user), json.dumps(payload)],
        cwd=servers.ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert emitter.returncode == 0, emitter.stderr


def test_a_write_only_emitter_in_another_process_reaches_a_client(
    start_server: StartServer, listen: Listen, prefix: str
) -> None:
    server = start_server()
    alice = new_user("alice")
    listener = listen(server, alice)
    payload = {"id": 987654321, "recipientId": alice, "message": "from a worker"}

    emit_from_another_program(REDIS_URL, prefix, alice, payload)
    assert listener.wait_for([payload["id"]]) == set()
    assert listener.received == [payload]


def test_an_offline_user_gets_pending_notifications_on_connect_over_polling(
    start_server: StartServer, listen: Listen, rows: Rows
) -> None:
    server = start_server()
    alice = new_user("alice")
    first = created(post_webhook(server, alice, "first"))
    second = created(post_webhook(server, alice, "second"))
    assert (first["status"], second["status"]) == ("pending", "pending")
    assert stored_status(rows, first["id"]) == "pending"

    listener = listen(server, alice, transport="polling")

    assert listener.wait_for([first["id"], second["id"]]) == set()
    assert [n["id"] for n in listener.received] == [first["id"], second["id"]]  # oldest first
    assert all(n["status"] == "delivered" for n in listener.received)
    assert wait_until(
        lambda: {stored_status(rows, n["id"]) for n in (first, second)} == {"delivered"}, 5
    )


def test_presence_is_shared_across_processes(
    cluster: tuple[servers.Server, servers.Server],
    listen: Listen,
    rows: Rows,
    redis_db: redis.Redis,
    prefix: str,
) -> None:
    first, second = cluster
    alice = new_user("alice")
    listener = listen(first, alice)

    online = created(post_webhook(second, alice, "while online"))
    assert online["status"] == "delivered"
    assert stored_status(rows, online["id"]) == "delivered"
    assert listener.wait_for([online["id"]]) == set()

    listener.disconnect()
    assert wait_until(lambda: not presence_members(redis_db, prefix, alice), 5)
    offline = created(post_webhook(second, alice, "after disconnect"))
    assert offline["status"] == "pending"
    assert stored_status(rows, offline["id"]) == "pending"


def test_a_killed_process_stops_counting_its_users_within_the_presence_ttl(
    start_server: StartServer, listen: Listen, rows: Rows, redis_db: redis.Redis, prefix: str
) -> None:
    ttl = 3
    doomed = start_server(PRESENCE_TTL=str(ttl))
    survivor = start_server()
    alice = new_user("alice")
    listener = listen(doomed, alice)
    connected_at = time.monotonic()

    # Past the TTL the entry still counts: the heartbeat refreshes it.
    time.sleep(max(0.0, connected_at + ttl * 1.5 - time.monotonic()))
    refreshed = created(post_webhook(survivor, alice, "after one ttl"))
    assert refreshed["status"] == "delivered"
    assert listener.wait_for([refreshed["id"]]) == set()

    doomed.kill()
    killed_at = time.monotonic()
    right_after = created(post_webhook(survivor, alice, "just after the crash"))
    # Nobody cleaned up: the entry has not expired, so the push went to the dead process's
    # channel, which nobody listens to any more. PUBLISH said so: still pending, not lost.
    assert unexpired_members(redis_db, prefix, alice)
    assert right_after["status"] == "pending"
    assert stored_status(rows, right_after["id"]) == "pending"

    assert wait_until(lambda: not unexpired_members(redis_db, prefix, alice), 10, interval=0.2)
    expired_after = time.monotonic() - killed_at
    assert expired_after <= ttl + ttl / 3 + 1.5, expired_after
    later = created(post_webhook(survivor, alice, "later"))
    assert later["status"] == "pending"  # offline everywhere now: no PUBLISH at all
    assert stored_status(rows, later["id"]) == "pending"
    assert presence_members(redis_db, prefix, alice)  # expired by score, not removed by anyone

    # The user reconnects through the balancer to the survivor and gets what was missed.
    listener.disconnect()
    again = listen(survivor, alice, last_id=refreshed["id"])
    assert again.wait_for([right_after["id"], later["id"]]) == set()
    assert wait_until(lambda: stored_status(rows, later["id"]) == "delivered", 5)


def test_sigterm_takes_the_process_users_offline_at_once_and_logs_their_disconnects(
    start_server: StartServer, listen: Listen, rows: Rows, redis_db: redis.Redis, prefix: str
) -> None:
    stopping = start_server()  # default PRESENCE_TTL (45 s): expiry cannot explain the result
    survivor = start_server()
    alice = new_user("alice")
    on_websocket = listen(stopping, alice)
    on_polling = listen(stopping, alice, transport="polling")
    sids = {on_websocket.client.get_sid(), on_polling.client.get_sid()}
    assert len(presence_members(redis_db, prefix, alice)) == 2

    stopping.terminate()
    terminated_at = time.monotonic()

    assert wait_until(lambda: not presence_members(redis_db, prefix, alice), 2)
    gone_after = time.monotonic() - terminated_at
    assert created(post_webhook(survivor, alice, "after the shutdown"))["status"] == "pending"
    assert wait_until(lambda: not (on_websocket.client.connected or on_polling.client.connected), 5)
    # Well before gunicorn's graceful timeout (15 s): no connection was left to wait for.
    assert stopping.wait(10) == 0, stopping.describe()
    events = sorted(
        (r["socket_id"], r["event"]) for r in rows("connection_logs") if r["user_id"] == alice
    )
    assert events == sorted((sid, event) for sid in sids for event in ("connect", "disconnect"))
    assert gone_after < 2


def vanished_polling_client(server: servers.Server, token: str) -> str:
    """A Socket.IO session opened over long-polling by hand, whose client then stops polling
    (a laptop closed mid-session): nobody will ever fetch what the server queues for it.
    Returns its Socket.IO sid."""
    url = f"{server.url}/socket.io/?EIO=4&transport=polling"
    headers = {"Connection": "close"}
    handshake = requests.get(url, headers=headers, timeout=5)
    engine_sid = json.loads(handshake.text[1:])["sid"]  # "0{...}": the OPEN packet
    session_url = f"{url}&sid={engine_sid}"
    auth = json.dumps({"token": token})
    posted = requests.post(session_url, data=f"40{auth}", headers=headers, timeout=5)
    assert posted.status_code == 200, posted.text
    # The namespace CONNECT answer, among what the connect handler emitted (replay_complete):
    # python-socketio queues those before the CONNECT packet, and the JS client buffers them.
    packets = requests.get(session_url, headers=headers, timeout=5).text.split("\x1e")
    connected = [p for p in packets if p.startswith("40")]
    assert connected, packets
    sid: str = json.loads(connected[0][2:])["sid"]
    return sid


def test_sigterm_is_not_held_up_by_a_polling_client_that_vanished(
    start_server: StartServer,
    listen: Listen,
    token: Callable[..., str],
    rows: Rows,
    redis_db: redis.Redis,
    prefix: str,
) -> None:
    stopping = start_server()
    alice, bob = new_user("alice"), new_user("bob")
    gone_sid = vanished_polling_client(stopping, token(alice))
    bob_listener = listen(stopping, bob)  # a later socket: closing it must not wait for alice's

    stopping.terminate()

    assert wait_until(lambda: not bob_listener.client.connected, 5)
    assert wait_until(lambda: not presence_members(redis_db, prefix, alice), 2)
    assert stopping.wait(10) == 0, stopping.describe()
    alice_events = [
        (r["socket_id"], r["event"]) for r in rows("connection_logs") if r["user_id"] == alice
    ]
    assert alice_events == [(gone_sid, "connect"), (gone_sid, "disconnect")]


class Sender:
    """A thread posting webhooks for one user back to back while ``resume``d; it records the
    ids acknowledged with 201 and any other answer."""

    def __init__(self, server: servers.Server, user: str) -> None:
        self.server = server
        self.user = user
        self.acked: list[int] = []
        self.errors: list[str] = []
        self.sending = threading.Event()
        self.in_flight = threading.Lock()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        count = 0
        while not self.stopped:
            if not self.sending.wait(0.05):
                continue
            with self.in_flight:
                if not self.sending.is_set():
                    continue
                count += 1
                try:
                    response = post_webhook(self.server, self.user, f"race {count}")
                except Exception as error:  # recorded and asserted on by the test
                    self.errors.append(repr(error))
                    continue
                if response.status_code == 201:
                    self.acked.append(response.json()["notification"]["id"])
                else:
                    self.errors.append(f"{response.status_code} {response.text[:200]}")

    def resume(self) -> None:
        self.sending.set()

    def pause(self) -> None:
        """Stop sending; returns once the request in flight has its answer."""
        self.sending.clear()
        with self.in_flight:
            pass

    def stop(self) -> None:
        self.pause()
        self.stopped = True
        self.thread.join(5)


def all_delivered(rows: Rows, user: str) -> bool:
    return all(
        r["status"] == "delivered" for r in rows("notifications") if r["recipient_id"] == user
    )


#: ``connect_race(sender_server, targets, user, *, most_rounds, seconds, least_rounds)``
ConnectRace = Callable[..., None]


@pytest.fixture
def connect_race(listen: Listen, rows: Rows, redis_db: redis.Redis, prefix: str) -> ConnectRace:
    """The contract's race: rows committed while the recipient connects are pushed or replayed.

    Each round connects to the next of ``targets`` (with ``lastId`` of the newest id seen, or
    without) while webhooks are sent to ``sender_server``, then pauses the sender: every
    acknowledged id must have reached some socket by then. The sender is paused across the
    disconnect, so this checks the connect side only.
    """

    def race(
        sender_server: servers.Server,
        targets: tuple[servers.Server, ...],
        user: str,
        *,
        most_rounds: int,
        seconds: float,
        least_rounds: int,
    ) -> None:
        sender = Sender(sender_server, user)
        seen: set[int] = set()
        rounds, deadline = 0, time.monotonic() + seconds
        try:
            while rounds < most_rounds and time.monotonic() < deadline:
                rounds += 1
                sender.resume()
                time.sleep(random.uniform(0, 0.015))  # jitter: where the connect lands in a send
                last_id = max(seen) if seen and rounds % 2 else None
                listener = listen(targets[rounds % len(targets)], user, last_id=last_id)
                time.sleep(random.uniform(0, 0.015))
                sender.pause()
                missing = listener.wait_for(set(sender.acked) - seen, timeout=5)
                assert not missing, f"round {rounds} (lastId {last_id}): never received {missing}"
                seen |= listener.ids()
                listener.disconnect()
                assert wait_until(lambda: not presence_members(redis_db, prefix, user), 5)
        finally:
            sender.stop()
        assert sender.errors == []
        assert rounds >= least_rounds, f"only {rounds} rounds in the time allowed"
        assert len(sender.acked) >= rounds, "the sender hardly overlapped the connections"
        assert seen >= set(sender.acked)
        assert wait_until(lambda: all_delivered(rows, user), 5)

    return race


def reconnect_race(
    sender_server: servers.Server,
    targets: tuple[servers.Server, ...],
    listen: Listen,
    *,
    user: str,
    most_listeners: int,
    seconds: float,
) -> None:
    """At-least-once across dropped connections: webhooks to ``sender_server`` never pause, the
    client connects (to each of ``targets`` in turn), receives a little and disconnects over
    and over, each time with ``lastId`` of the newest id it has seen; a last connection, to the
    last of ``targets``, collects the rest. Every acknowledged id arrives."""
    sender = Sender(sender_server, user)
    listeners: list[Listener] = []

    def seen() -> set[int]:
        return set().union(*(listener.ids() for listener in listeners))

    sender.resume()
    deadline = time.monotonic() + seconds
    try:
        while len(listeners) < most_listeners and time.monotonic() < deadline:
            target = targets[len(listeners) % len(targets)]
            listeners.append(listen(target, user, last_id=max(seen(), default=None)))
            time.sleep(random.uniform(0, 0.03))
            listeners[-1].disconnect()
    finally:
        sender.stop()
    final = listen(targets[-1], user, last_id=max(seen(), default=None))
    listeners.append(final)
    missing = final.wait_for(set(sender.acked) - seen(), timeout=5)

    assert sender.errors == []
    assert len(sender.acked) >= len(listeners), "the sender hardly overlapped the connections"
    assert not missing, f"acknowledged but never received: {sorted(missing)}"


def test_no_notification_is_lost_while_its_recipient_connects(
    start_server: StartServer, connect_race: ConnectRace
) -> None:
    """:func:`connect_race` on one process."""
    server = start_server()
    connect_race(server, (server,), new_user("racer"), most_rounds=200, seconds=25, least_rounds=50)


def test_sending_through_reconnections_with_last_id_loses_nothing(
    start_server: StartServer, listen: Listen, rows: Rows
) -> None:
    """:func:`reconnect_race` on one process; every notification ends delivered."""
    server = start_server()
    user = new_user("flaky")
    reconnect_race(server, (server,), listen, user=user, most_listeners=120, seconds=12)
    assert wait_until(lambda: all_delivered(rows, user), 5)
