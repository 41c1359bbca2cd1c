"""Bounded load for the fault scenarios, and the ledger that counts every notification.

Every send carries a message of its own (``<tag>:<n>``), so the database can be asked how many
times each one was stored. A send ends in one of three ways:

- **acknowledged**: 201 (webhook) or ``success: true`` (ack); it must be stored exactly once and
  reach a client of its recipient that reconnects with ``lastId``;
- **refused**: any other answer (503 ``service_unavailable``, ...); it must be stored zero times;
- **unanswered**: the connection broke after the request was sent (the process died under it),
  so the sender cannot know; it may be stored once, never twice.

A request that could not even connect (a dead or stopping process) was never sent: the load
sends it to the next server, as a load balancer would, and does not count it.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.conftest import wait_until
from tests.e2e import servers
from tests.e2e.clients import Listener, webhook_at

#: Lines printed at the end of the run by ``pytest_terminal_summary`` (tests/faults/conftest.py).
REPORT: list[str] = []


def never_connected(error: requests.RequestException) -> bool:
    """True when the request never reached a server (refused connection): not sent at all."""
    return isinstance(error, requests.ConnectionError) and "NewConnectionError" in repr(error)


@dataclass
class Ledger:
    """What every send of one scenario got, and the check of it against the database."""

    scenario: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    acked: dict[str, int] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    unanswered: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def message(self) -> str:
        return f"{self.tag}:{next(self.counter)}"

    def ack(self, message: str, notification_id: int) -> None:
        with self.lock:
            self.acked[message] = notification_id

    def refuse(self, message: str, why: str) -> None:
        with self.lock:
            self.refused[message] = why

    def lose_answer(self, message: str, why: str) -> None:
        with self.lock:
            self.unanswered[message] = why

    def acked_ids(self) -> set[int]:
        with self.lock:
            return set(self.acked.values())

    def verify(
        self, stored_rows: Iterable[dict[str, Any]], delivered: set[int], **extra: Any
    ) -> str:
        """Assert the scenario's guarantees against the stored rows and the ids clients got;
        returns (and reports) the counts."""
        mine = [row for row in stored_rows if str(row["message"]).startswith(f"{self.tag}:")]
        times = Counter(str(row["message"]) for row in mine)
        id_of = {str(row["message"]): row["id"] for row in mine}
        sent = self.acked.keys() | self.refused.keys() | self.unanswered.keys()
        assert times.keys() <= sent, "rows stored that nobody sent"
        not_once = {m: times[m] for m in self.acked if times[m] != 1}
        assert not not_once, f"acknowledged but stored {not_once} times"
        wrong_id = {m for m, i in self.acked.items() if id_of[m] != i}
        assert not wrong_id, f"acknowledged with another id than stored: {sorted(wrong_id)[:5]}"
        refused_stored = {m: self.refused[m] for m in self.refused if times[m]}
        assert not refused_stored, f"refused yet stored: {refused_stored}"
        twice = {m for m in self.unanswered if times[m] > 1}
        assert not twice, f"unanswered and stored twice: {sorted(twice)}"
        missing = self.acked_ids() - delivered
        assert not missing, f"acknowledged, stored, never delivered: {sorted(missing)[:20]}"
        why = Counter(self.refused.values())
        line = (
            f"{self.scenario}: sent {len(sent)}; acknowledged {len(self.acked)} "
            f"(stored once {len(self.acked)}, delivered {len(self.acked_ids() & delivered)}); "
            f"refused {len(self.refused)} {dict(why) or ''} (stored 0); "
            f"unanswered {len(self.unanswered)} {dict(Counter(self.unanswered.values())) or ''} "
            f"(stored {sum(times[m] for m in self.unanswered)})"
        )
        if extra:
            line += "; " + ", ".join(f"{k} {v}" for k, v in extra.items())
        REPORT.append(line)
        print(line)
        return line


def post(url: str, recipient: str, message: str, timeout: float = 10) -> requests.Response:
    return webhook_at(url, {"recipientId": recipient, "message": message}, timeout=timeout)


def post_acked(ledger: Ledger, url: str, recipient: str) -> dict[str, Any]:
    """One webhook to ``url`` for ``recipient``, answered 201 and acknowledged in ``ledger``;
    its notification."""
    answer = post(url, recipient, ledger.message())
    assert answer.status_code == 201, answer.text
    notification: dict[str, Any] = answer.json()["notification"]
    ledger.ack(notification["message"], notification["id"])
    return notification


def health(server: servers.Server, timeout: float = 5) -> tuple[int, dict[str, Any]]:
    """GET /health of ``server``: its status code and body."""
    response = requests.get(
        f"{server.url}/health", headers={"Connection": "close"}, timeout=timeout
    )
    return response.status_code, response.json()


def health_is(status: int, *targets: servers.Server, timeout: float = 5) -> bool:
    """True when each of ``targets`` answers GET /health with ``status``."""
    return all(health(target, timeout)[0] == status for target in targets)


def assert_outage_reported(
    reporter: servers.Server, other: servers.Server, down: str, timeout: float = 5
) -> None:
    """Both servers answer GET /health 503 within 5 s, and ``reporter``'s body names ``down``
    (``database`` or ``redis``) as the part in error, the other part ok."""
    assert wait_until(lambda: health_is(503, reporter, other, timeout=timeout), 5)
    _, body = health(reporter, timeout)
    up = {"database": "redis", "redis": "database"}[down]
    assert (body["status"], body[down], body[up]) == ("error", "error", "ok"), body


class WebhookLoad:
    """``threads`` senders posting webhooks round-robin over ``users`` and the live servers.

    Each sender waits ``interval`` seconds between its sends (bounded load). A server that
    refuses the connection is skipped for the next one; if every server refuses, the send is
    dropped unsent (nothing to count).
    """

    def __init__(
        self,
        ledger: Ledger,
        targets: Sequence[servers.Server],
        users: Sequence[str],
        threads: int = 2,
        interval: float = 0.02,
    ) -> None:
        self.ledger = ledger
        self.targets = list(targets)
        self.users = list(users)
        self.interval = interval
        self.running = threading.Event()
        self.running.set()
        self.sends = itertools.count()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        while self.running.is_set():
            n = next(self.sends)
            user = self.users[n % len(self.users)]
            message = self.ledger.message()
            for offset in range(len(self.targets)):
                target = self.targets[(n + offset) % len(self.targets)]
                if self._send(target, user, message):
                    break
            time.sleep(self.interval)

    def _send(self, target: servers.Server, user: str, message: str) -> bool:
        """False when the connection was refused (try another server)."""
        try:
            response = post(target.url, user, message)
        except requests.RequestException as error:
            if never_connected(error):
                return False
            self.ledger.lose_answer(message, type(error).__name__)
            return True
        if response.status_code == 201:
            self.ledger.ack(message, response.json()["notification"]["id"])
        else:
            try:
                code = response.json().get("code", "?")
            except ValueError:
                code = "not json"
            self.ledger.refuse(message, f"{response.status_code} {code}")
        return True

    def stop(self) -> None:
        self.running.clear()
        for thread in self.threads:
            thread.join(15)


class Fleet:
    """The sockets of some users, each kept like a real client keeps it: the highest id seen is
    the ``lastId`` of its next connection, wherever that goes."""

    def __init__(self, token: Callable[[str], str], baseline: int = 0) -> None:
        """``baseline``: the id every client is taken to have seen already (its first lastId)."""
        self.token = token
        self.baseline = baseline
        self.sessions: dict[str, list[Listener]] = {}

    def connect(self, user: str, server: servers.Server | str) -> Listener:
        url = server if isinstance(server, str) else server.url
        last_id = max(self.received(user) | {self.baseline})
        listener = Listener(url, self.token(user), last_id=last_id)
        self.sessions.setdefault(user, []).append(listener)
        return listener

    def current(self, user: str) -> Listener:
        return self.sessions[user][-1]

    def received(self, user: str) -> set[int]:
        return set().union(*(s.ids() for s in self.sessions.get(user, [])))

    def delivered(self) -> set[int]:
        return set().union(*(self.received(user) for user in self.sessions))

    def reconnect_everyone(
        self, users: Iterable[str], server: servers.Server | str, acked: set[int]
    ) -> int:
        """Let the acknowledged ids arrive live, then reconnect every user with its lastId, as a
        client would: what a dropped push left behind comes now. Returns how many had arrived
        live before."""
        wait_until(lambda: acked <= self.delivered(), 5)
        live = len(acked & self.delivered())
        for user in users:
            self.current(user).disconnect()
            self.connect(user, server)
        wait_until(lambda: acked <= self.delivered(), 10)
        return live

    def duplicates(self) -> int:
        """Notifications a user got more than once (allowed; clients drop them by id)."""
        total = 0
        for user in self.sessions:
            counts = Counter(n["id"] for s in self.sessions[user] for n in list(s.received))
            total += sum(c - 1 for c in counts.values())
        return total

    def close(self) -> None:
        for sessions in self.sessions.values():
            for listener in sessions:
                listener.disconnect()


def pushed_across(ledger: Ledger, fleet: Fleet, server: servers.Server, user: str) -> bool:
    """A webhook to ``server`` for ``user`` (acknowledged in ``ledger``) was delivered live and
    reached ``user``'s socket in ``fleet`` within a second."""
    notification = post_acked(ledger, server.url, user)
    return notification["status"] == "delivered" and not fleet.current(user).wait_for(
        [notification["id"]], 1
    )


class SocketLoad:
    """One client sending ``send_notification`` events back to back (``interval`` apart) to
    ``recipients`` over its own socket, each answer counted in the ledger."""

    def __init__(
        self,
        ledger: Ledger,
        sender: Listener,
        recipients: Sequence[str],
        interval: float = 0.02,
    ) -> None:
        self.ledger = ledger
        self.sender = sender
        self.recipients = list(recipients)
        self.interval = interval
        self.running = threading.Event()
        self.running.set()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for n in itertools.count():
            if not self.running.is_set() or not self.sender.client.connected:
                return
            message = self.ledger.message()
            payload = {"recipientId": self.recipients[n % len(self.recipients)], "message": message}
            try:
                ack = self.sender.call("send_notification", payload)
            except Exception as error:  # a timeout or a dropped socket: no answer
                self.ledger.lose_answer(message, type(error).__name__)
                continue
            if ack.get("success") is True:
                self.ledger.ack(message, ack["notification"]["id"])
            else:
                self.ledger.refuse(message, f"ack {ack.get('code')}")
            time.sleep(self.interval)

    def stop(self) -> None:
        self.running.clear()
        self.thread.join(15)
