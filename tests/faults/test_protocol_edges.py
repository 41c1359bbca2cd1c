"""The Engine.IO v4 / Socket.IO v5 edges, sent as raw packets (raw websocket frames and raw
HTTP) at real gunicorn processes: nothing a client sends is dropped, no session is held
unauthenticated, and a broken or silent session is ended at once, its cleanup with it.

Each test fails on python-engineio / python-socketio as they are (see app/patches/engineio.py
and app/patches/socketio.py for what each one does instead).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import websocket

from tests.conftest import Rows, wait_until
from tests.e2e import servers
from tests.faults.conftest import StartServer
from tests.faults.load import post
from tests.faults.raw import ACCEPTED, closed_by_server, engineio_socket, handshake

METRICS_TOKEN = "m" * 32
#: A protocol line of the production log (one JSON object per line).
PROTOCOL_LINE = re.compile(r'^\{.*"logger":"notify\.protocol".*\}$', re.M)


def new_user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


class Polling:
    """A raw Engine.IO long-polling session: the handshake GET, then POSTs and GETs by hand."""

    def __init__(self, server: servers.Server) -> None:
        self.base = f"{server.url}/socket.io/?EIO=4&transport=polling"
        opened = requests.get(self.base, timeout=5)
        assert opened.status_code == 200, opened.text
        assert opened.text.startswith("0{"), opened.text
        self.handshake = json.loads(opened.text[1:])
        self.url = f"{self.base}&sid={self.handshake['sid']}"

    def post(self, *packets: str, chunked: bool = False) -> requests.Response:
        body = "\x1e".join(packets).encode()
        data: Any = iter([body[: len(body) // 2], body[len(body) // 2 :]]) if chunked else body
        return requests.post(self.url, data=data, timeout=10)

    def get(self, timeout: float = 10) -> requests.Response:
        return requests.get(self.url, timeout=timeout)

    def packets(self) -> list[str]:
        answer = self.get()
        assert answer.status_code == 200, (answer.status_code, answer.text)
        return answer.text.split("\x1e")

    def connect(self, token: str) -> None:
        assert self.post("40" + json.dumps({"token": token})).text == "OK"
        assert any(p.startswith("40{") for p in self.until(lambda p: p.startswith("40")))

    def until(self, found: Callable[[str], bool], deadline: float = 10) -> list[str]:
        """GET until a packet satisfies ``found``; every packet received (pings answered)."""
        received: list[str] = []
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            batch = self.packets()
            received += batch
            if "2" in batch:
                self.post("3")
            if any(found(p) for p in batch):
                return received
        raise AssertionError(f"not received within {deadline} s: {received}")


def acks(packets: list[str]) -> dict[int, Any]:
    """Socket.IO ACK packets (``43<id>[...]``) by id."""
    found = {}
    for pkt in packets:
        match = re.match(r"^43(\d+)(\[.*)$", pkt, re.S)
        if match:
            found[int(match.group(1))] = json.loads(match.group(2))[0]
    return found


def online(server: servers.Server, user: str) -> bool:
    """Whether ``user`` counts as online: a notification to them is pushed (``delivered``)."""
    answer = post(server.url, user, "are you there")
    assert answer.status_code == 201, answer.text
    return bool(answer.json()["notification"]["status"] == "delivered")


def disconnect_logged(rows: Rows, user: str) -> bool:
    return any(
        row["user_id"] == user and row["event"] == "disconnect" for row in rows("connection_logs")
    )


def metric(server: servers.Server, kind: str) -> float:
    text = requests.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5
    ).text
    match = re.search(
        rf'^notify_sessions_ended_by_protocol_total{{kind="{kind}"}} (\S+)$', text, re.M
    )
    return float(match.group(1)) if match else 0.0


def protocol_lines(server: servers.Server) -> list[dict[str, Any]]:
    return [json.loads(line) for line in PROTOCOL_LINE.findall(server.log())]


@pytest.fixture
def server(start_server: StartServer) -> servers.Server:
    return start_server(METRICS_TOKEN=METRICS_TOKEN)


@pytest.fixture
def websocket_session(
    server: servers.Server, token: Callable[..., str]
) -> Iterator[Callable[[str], websocket.WebSocket]]:
    """``open(user)``: a raw websocket connected to ``/`` as ``user``."""
    opened: list[websocket.WebSocket] = []

    def open_as(user: str) -> websocket.WebSocket:
        ws = engineio_socket(server)
        opened.append(ws)
        ws.send("40" + json.dumps({"token": token(user)}))
        assert ws.recv().startswith("40{")
        return ws

    yield open_as
    for ws in opened:
        ws.shutdown()


def assert_ended_at_once(
    server: servers.Server, rows: Rows, user: str, kind: str, before: float
) -> None:
    """The session's cleanup ran: the user offline, its disconnect logged, counted by kind."""
    assert not online(server, user), f"{user} still counts as online"
    assert wait_until(lambda: disconnect_logged(rows, user), 5), "no disconnect row"
    assert metric(server, kind) == before + 1


# -- nothing a client sends is dropped ---------------------------------------------------


def test_a_chunked_long_polling_post_is_read_whole(
    server: servers.Server, token: Callable[..., str], rows: Rows
) -> None:
    """A POST without Content-Length (as a proxy forwarding an HTTP/2 body may send it) is
    read whole: its CONNECT and its event are handled, and answered."""
    sender, recipient = new_user("chunked"), new_user("recipient")
    session = Polling(server)
    assert session.post("40" + json.dumps({"token": token(sender)}), chunked=True).text == "OK"
    session.until(lambda p: p.startswith("40{"))
    event = ["send_notification", {"recipientId": recipient, "message": "sent chunked"}]
    assert session.post("421" + json.dumps(event), chunked=True).text == "OK"
    answered = acks(session.until(lambda p: p.startswith("431")))
    assert answered[1]["success"] is True, answered
    assert [row["message"] for row in rows("notifications")] == ["sent chunked"]


def test_replay_complete_comes_after_the_connect_packet_and_the_replay(
    server: servers.Server, token: Callable[..., str]
) -> None:
    """A client reading packets in order sees its CONNECT before ``replay_complete``, and the
    replayed notifications before it (the connect handler's own emits go out ahead of the
    CONNECT, as python-socketio queues them; the JS client buffers those)."""
    user = new_user("ordered")
    sent = [post(server.url, user, f"missed {n}").json()["notification"]["id"] for n in range(2)]
    session = Polling(server)
    assert session.post("40" + json.dumps({"token": token(user)})).text == "OK"
    received = session.until(lambda p: p.startswith('42["replay_complete"'))
    kinds = [
        "connect" if p.startswith("40{") else json.loads(p[2:])[0]
        for p in received
        if p.startswith(("40{", "42["))
    ]
    assert kinds[-1] == "replay_complete" and "connect" in kinds, kinds
    assert kinds.index("connect") < kinds.index("replay_complete")
    replayed = [json.loads(p[2:])[1]["id"] for p in received if p.startswith('42["new_n')]
    assert replayed == sent


def test_a_long_polling_post_of_many_packets_is_handled_whole(
    server: servers.Server, token: Callable[..., str], rows: Rows
) -> None:
    """The JS client sends every event queued during a POST in the next one: python-engineio
    refused more than 16 packets in one payload (and dropped them all, answering ``OK``)."""
    sender, recipient = new_user("batch"), new_user("recipient")
    session = Polling(server)
    session.connect(token(sender))
    events = [
        f"42{n}" + json.dumps(["send_notification", {"recipientId": recipient, "message": f"m{n}"}])
        for n in range(1, 31)
    ]
    assert session.post(*events).text == "OK"
    answered: dict[int, Any] = {}
    wait_until(lambda: answered.update(acks(session.packets())) or len(answered) == 30, 10)
    assert sorted(answered) == list(range(1, 31))
    assert all(ack["success"] for ack in answered.values()), answered
    assert len(rows("notifications")) == 30


def test_a_chunked_long_polling_post_over_the_limit_is_refused_with_413(
    start_server: StartServer, token: Callable[..., str], rows: Rows
) -> None:
    server = start_server(MAX_CONTENT_LENGTH="4096")
    session = Polling(server)
    session.connect(token(new_user("big")))
    huge = ["send_notification", {"recipientId": "someone", "message": "x" * 5000}]
    answer = session.post("421" + json.dumps(huge), chunked=True)
    assert answer.status_code == 413, answer.text
    assert answer.json()["code"] == "payload_too_large"
    assert rows("notifications") == []


# -- no session is held unauthenticated --------------------------------------------------


def test_a_session_without_connect_is_closed_after_connect_timeout(
    start_server: StartServer,
) -> None:
    server = start_server(CONNECT_TIMEOUT="1")
    ws = engineio_socket(server)
    session = Polling(server)
    started = time.monotonic()
    try:
        assert closed_by_server(ws.sock, within=3), "a websocket session without CONNECT is open"
        assert time.monotonic() - started < 2.5
        # The long-polling session is gone: a GET gets its CLOSE packet if it was waiting
        # when the session was closed, else 400; the next one 400 either way.
        answer = session.get()
        assert (answer.status_code, answer.text) in ((200, "1"), (400, answer.text)), answer.text
        assert session.get().status_code == 400
    finally:
        ws.shutdown()


def test_sessions_waiting_for_connect_count_against_the_handshake_limit(
    start_server: StartServer, token: Callable[..., str]
) -> None:
    server = start_server(CONNECT_RATE_LIMIT="3/minute")
    waiting = [engineio_socket(server) for _ in range(3)]
    try:
        answer = handshake(server.url, {"token": token(new_user("late"))})
        assert answer != ACCEPTED, "three sessions without CONNECT did not count"
        assert answer["message"] == "rate_limited", answer
    finally:
        for ws in waiting:
            ws.shutdown()


def test_an_accepted_handshake_is_counted_once(
    start_server: StartServer, token: Callable[..., str]
) -> None:
    """The count moved from the CONNECT to the session's opening: not counted twice."""
    server = start_server(CONNECT_RATE_LIMIT="4/minute")
    user = new_user("counted")
    answers = [handshake(server.url, {"token": token(user)}) for _ in range(5)]
    assert answers[:4] == [ACCEPTED] * 4, answers
    assert answers[4]["message"] == "rate_limited", answers


# -- a broken session is ended at once -------------------------------------------------

WEBSOCKET_GARBAGE = [
    ('42["unterminated"', "socketio_packet"),
    ("47", "socketio_packet"),
    ("42{}", "socketio_packet"),
    ("42", "socketio_packet"),
    ("abc", "engineio_packet"),
    ("7", "engineio_packet"),
    ("", "engineio_packet"),
    ("b!!!", "engineio_packet"),
]


@pytest.mark.parametrize(("garbage", "kind"), WEBSOCKET_GARBAGE)
def test_an_undecodable_websocket_packet_ends_the_session_and_its_cleanup_at_once(
    server: servers.Server,
    websocket_session: Callable[[str], websocket.WebSocket],
    rows: Rows,
    garbage: str,
    kind: str,
) -> None:
    user = new_user("garbage")
    ws = websocket_session(user)
    assert online(server, user)
    before = metric(server, kind)
    ws.send(garbage)
    assert closed_by_server(ws.sock, within=3), f"{garbage!r} did not end the session"
    assert_ended_at_once(server, rows, user, kind, before)
    # One WARNING line, JSON like every production line (start_server fails on a traceback).
    lines = protocol_lines(server)
    assert [(line["level"], line["kind"]) for line in lines] == [("WARNING", kind)], lines


POLLING_GARBAGE = [
    ('42["unterminated"', "socketio_packet"),
    ("49", "socketio_packet"),
    ("abc", "engineio_packet"),
    ("9", "engineio_packet"),
    ("2", "engineio_packet"),
]


@pytest.mark.parametrize(("garbage", "kind"), POLLING_GARBAGE)
def test_an_undecodable_long_polling_packet_ends_the_session_and_its_cleanup_at_once(
    server: servers.Server, token: Callable[..., str], rows: Rows, garbage: str, kind: str
) -> None:
    user = new_user("garbage")
    session = Polling(server)
    session.connect(token(user))
    assert online(server, user)
    before = metric(server, kind)
    answer = session.post(garbage)
    assert answer.status_code == (400 if kind == "engineio_packet" else 200), answer.text
    assert_ended_at_once(server, rows, user, kind, before)
    if kind == "socketio_packet":  # answered OK: the next GET fetches the rest and the CLOSE
        assert session.packets()[-1] == "1"
    assert session.get().status_code == 400  # the session is gone
    lines = protocol_lines(server)
    assert [(line["level"], line["kind"]) for line in lines] == [("WARNING", kind)], lines


def test_a_connect_to_an_unknown_namespace_is_refused_and_ends_the_session(
    server: servers.Server, token: Callable[..., str]
) -> None:
    before = metric(server, "unknown_namespace")
    ws = engineio_socket(server)
    try:
        ws.send("40/admin," + json.dumps({"token": token(new_user("admin"))}))
        assert ws.recv() == '44/admin,{"message":"Invalid namespace"}'
        assert closed_by_server(ws.sock, within=3), "the session outlived its refusal"
    finally:
        ws.shutdown()
    assert metric(server, "unknown_namespace") == before + 1


# -- heartbeat with fractions of a second ------------------------------------------------


def test_sub_second_ping_settings_are_announced_in_milliseconds_and_kept(
    start_server: StartServer,
) -> None:
    server = start_server(PING_INTERVAL="0.3", PING_TIMEOUT="0.2")
    session = Polling(server)
    assert (session.handshake["pingInterval"], session.handshake["pingTimeout"]) == (300, 200)
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket", timeout=5
    )
    try:
        opened = json.loads(ws.recv()[1:])
        assert (opened["pingInterval"], opened["pingTimeout"]) == (300, 200)
        started = time.monotonic()
        assert ws.recv() == "2"
        assert time.monotonic() - started < 1.0  # every 0.3 s, not every 25
        # Unanswered, the ping ends the session within the interval and the timeout.
        assert closed_by_server(ws.sock, within=2)
    finally:
        ws.shutdown()


# -- the smaller ones --------------------------------------------------------------------


def test_a_handshake_without_transport_and_an_other_method_are_refused_with_400(
    server: servers.Server,
) -> None:
    base = f"{server.url}/socket.io/?EIO=4"
    missing = requests.get(base, timeout=5)
    assert missing.status_code == 400 and missing.json()["code"] == "validation_error"
    put = requests.put(f"{base}&transport=polling", timeout=5)
    assert put.status_code == 400 and put.json()["code"] == "validation_error"


def test_a_second_concurrent_poll_is_refused_at_once_and_ends_the_session(
    server: servers.Server,
) -> None:
    session = Polling(server)
    first: list[requests.Response] = []
    waiting = threading.Thread(target=lambda: first.append(session.get()))
    waiting.start()
    time.sleep(0.3)  # the first GET is now waiting for packets
    started = time.monotonic()
    second = session.get(timeout=5)
    assert second.status_code == 400
    assert time.monotonic() - started < 1
    waiting.join(5)
    assert first[0].status_code == 200 and first[0].text == "1", first[0].text
    assert session.get().status_code == 400


def test_a_client_close_answers_the_waiting_poll_with_a_noop(server: servers.Server) -> None:
    session = Polling(server)
    first: list[requests.Response] = []
    waiting = threading.Thread(target=lambda: first.append(session.get()))
    waiting.start()
    time.sleep(0.3)
    assert session.post("1").text == "OK"
    waiting.join(5)
    assert first[0].status_code == 200 and first[0].text == "6", first[0].text
    assert session.get().status_code == 400


@pytest.mark.parametrize("path", ["/health", "/socket.io/?EIO=4&transport=polling"])
def test_an_answer_to_a_request_that_asked_to_close_says_connection_close(
    server: servers.Server, path: str
) -> None:
    """A pooling client must learn from the answer that the connection will not be reused:
    otherwise it sends its next request (a polling GET) on a connection the server is closing,
    and the request fails with "Remote end closed connection without response"."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = raw.recv(4096)
            if not chunk:
                break
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    assert head.startswith("http/1.1 200"), head
    assert "\r\nconnection: close" in head, head
