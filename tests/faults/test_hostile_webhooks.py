"""Abuse 7: hostile webhook calls at a real gunicorn process.

Wrong, missing and misplaced keys; a fuzzer's bodies (Hypothesis: any JSON value, near-valid
notifications, raw bytes, NaN, lone surrogates); 1 MB bodies (with and without a length);
deep nesting; invalid UTF-8; SQL and HTML that must come back verbatim from every output. The
server must answer each in the contract's shape, never 5xx, never log an error, and store
exactly what it acknowledged.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from app.security import api_keys
from tests.conftest import API_KEY, REPRODUCIBLE, Rows, webhook
from tests.e2e import servers
from tests.faults.conftest import StartServer
from tests.faults.load import REPORT, Fleet

ERROR_CODES = {
    400: {"invalid_json", "validation_error"},
    401: {"unauthorized"},
    413: {"payload_too_large"},
    415: {"unsupported_media_type"},
}


def send(
    server: servers.Server,
    body: bytes | Iterator[bytes],
    headers: dict[str, str] | None = None,
    path: str = "/webhook/notify",
    session: requests.Session | None = None,
) -> requests.Response:
    base = {"Content-Type": "application/json", "X-API-Key": API_KEY, "Connection": "close"}
    merged = {k: v for k, v in (base | (headers or {})).items() if v is not None}
    poster = session or requests
    return poster.post(f"{server.url}{path}", data=body, headers=merged, timeout=15)


def refused(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert (body["success"], body["code"]) == (False, code), body
    assert isinstance(body["error"], str) and "Traceback" not in response.text
    return body


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode()


def count(rows: Rows) -> int:
    return len(rows("notifications"))


def test_wrong_missing_and_misplaced_keys_are_refused_and_store_nothing(
    start_server: StartServer, rows: Rows
) -> None:
    server = start_server()
    body = encoded({"recipientId": "victim", "message": "forged"})
    wrong = {
        "same length": "x" * len(API_KEY),
        "one character off": API_KEY[:-1] + ("0" if API_KEY[-1] != "0" else "1"),
        "prefix": API_KEY[:-1],
        "longer": API_KEY + "0",
        "one character": "k",
        "10 KB": "k" * 10_000,
        "latin-1 bytes": "é" * len(API_KEY),
    }
    for name, key in wrong.items():
        headers = {"X-API-Key": key.encode().decode("latin-1")}
        assert refused(send(server, body, headers), 401, "unauthorized"), name
    refused(send(server, body, {"X-API-Key": None}), 401, "unauthorized")
    for parameter in ("apiKey", "api_key", "key", "X-API-Key", "token"):
        response = send(
            server, body, {"X-API-Key": None}, path=f"/webhook/notify?{parameter}={API_KEY}"
        )
        refused(response, 401, "unauthorized")
    for field in (12345, [API_KEY], {"key": API_KEY}, "", None):
        forged = encoded({"recipientId": "victim", "message": "forged", "apiKey": field})
        refused(send(server, forged, {"X-API-Key": None}), 401, "unauthorized")
    assert count(rows) == 0
    # The same request with the key is accepted (the refusals above are about the key).
    assert send(server, body).status_code == 201
    assert count(rows) == 1


def test_the_webhook_compares_keys_in_constant_time(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code path, not the timing: the view's key check goes through hmac.compare_digest
    against every configured key (a wrong key of the right length and one of another length).
    """
    compared: list[tuple[bytes, bytes]] = []
    real = api_keys.hmac.compare_digest

    def spy(given: bytes, key: bytes) -> bool:
        compared.append((given, key))
        return real(given, key)

    monkeypatch.setattr(api_keys.hmac, "compare_digest", spy)
    for candidate in ("y" * len(API_KEY), "short"):
        compared.clear()
        response = webhook(client, {"recipientId": "u", "message": "m"}, key=candidate)
        assert response.status_code == 401
        assert compared and all(key == API_KEY.encode() for _, key in compared), compared
        assert {given for given, _ in compared} == {candidate.encode()}


def test_oversized_nested_and_undecodable_bodies_are_refused(
    start_server: StartServer, rows: Rows
) -> None:
    server = start_server()
    megabyte = encoded({"recipientId": "u", "message": "x" * 1_000_000})
    refused(send(server, megabyte), 413, "payload_too_large")
    chunks = (megabyte[i : i + 65536] for i in range(0, len(megabyte), 65536))
    refused(send(server, chunks), 413, "payload_too_large")  # no Content-Length: chunked
    refused(send(server, b"[" * 1_000_000), 413, "payload_too_large")
    refused(send(server, b"[" * 30_000 + b"]" * 30_000), 400, "invalid_json")
    deep: Any = 1
    for _ in range(21):
        deep = {"a": deep}
    body = refused(
        send(server, encoded({"recipientId": "u", "message": "m", "data": deep})),
        400,
        "validation_error",
    )
    assert set(body["details"]) == {"data"}
    refused(send(server, b'{"recipientId": "u", "message": "\xff\xfe bad"}'), 400, "invalid_json")
    refused(
        send(server, '{"recipientId": "u", "message": "hé"}'.encode("utf-16")), 400, "invalid_json"
    )
    refused(
        send(server, b'{"recipientId": "u", "message": "m", "data": {"n": NaN}}'),
        400,
        "invalid_json",
    )
    refused(
        send(server, b'{"recipientId": "u", "message": "m", "data": {"n": 1e999}}'),
        400,
        "invalid_json",
    )
    body = refused(
        send(server, b'{"recipientId": "u", "message": "\\ud800"}'), 400, "validation_error"
    )
    assert set(body["details"]) == {"message"}
    refused(send(server, b"{}", {"Content-Type": "text/plain"}), 415, "unsupported_media_type")
    assert count(rows) == 0


HOSTILE_TEXT = [
    "'); DROP TABLE notifications; --",
    "Robert'); DELETE FROM notifications WHERE ('1'='1",
    "1 OR 1=1; SELECT SLEEP(5)",
    "<script>alert(document.cookie)</script>",
    "<img src=x onerror=alert(1)>",
    "&lt;b&gt;already escaped&lt;/b&gt; &amp;amp;",
    "\\'; \\\" %s %(x)s {0} ${x} `id`",
]


def test_sql_and_html_come_back_verbatim_from_every_output(
    start_server: StartServer, fleet: Fleet, rows: Rows, token: Callable[..., str]
) -> None:
    server = start_server()
    listener = fleet.connect("verbatim-user", server)
    sent = []
    for text in HOSTILE_TEXT:
        data = {"html": text, text: [text]}
        response = send(
            server, encoded({"recipientId": "verbatim-user", "message": text, "data": data})
        )
        assert response.status_code == 201, response.text
        notification = response.json()["notification"]
        assert (notification["message"], notification["data"]) == (text, data)
        sent.append(notification["id"])
    assert listener.wait_for(sent) == set()
    pushed = {n["id"]: (n["message"], n["data"]) for n in listener.received}
    inbox = requests.get(
        f"{server.url}/api/notifications?limit=100",
        headers={"Authorization": f"Bearer {token('verbatim-user')}"},
        timeout=10,
    ).json()["notifications"]
    listed = {n["id"]: (n["message"], n["data"]) for n in inbox}
    stored = {
        r["id"]: (r["message"], r["data"] if isinstance(r["data"], dict) else json.loads(r["data"]))
        for r in rows("notifications")
    }
    expected = {i: (t, {"html": t, t: [t]}) for i, t in zip(sent, HOSTILE_TEXT, strict=True)}
    assert pushed == listed == stored == expected


# The fuzzer.

SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
TEXT = st.lists(st.one_of(st.characters(), SURROGATES), max_size=30).map("".join)
NUMBERS = st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(TEXT, children, max_size=5),
    max_leaves=25,
)
IDS = st.one_of(st.from_regex(r"[A-Za-z0-9._:@-]{1,128}", fullmatch=True), st.integers(), TEXT)
NEAR_VALID = st.fixed_dictionaries(
    {"recipientId": IDS, "message": TEXT | st.just("hello")},
    optional={
        "type": TEXT | st.sampled_from(["alert", "message"]),
        "data": JSON_VALUES,
        "recipientIds": st.lists(IDS, max_size=5) | JSON_VALUES,
        "apiKey": JSON_VALUES,
        "extra": JSON_VALUES,
    },
)
BODIES = st.one_of(
    JSON_VALUES.map(lambda v: json.dumps(v).encode(errors="surrogatepass")),
    NEAR_VALID.map(lambda v: json.dumps(v).encode(errors="surrogatepass")),
    NEAR_VALID.map(lambda v: json.dumps(v, ensure_ascii=False).encode(errors="surrogatepass")),
    st.binary(max_size=300),
)


def stored_by(answer: dict[str, Any]) -> int:
    return len(answer["notifications"]) if "notifications" in answer else 1


def test_a_fuzzer_finds_no_server_error_and_every_acknowledged_row_is_stored(
    start_server: StartServer, rows: Rows
) -> None:
    server = start_server()
    statuses: Counter[int] = Counter()
    acknowledged = 0
    session = requests.Session()

    @given(body=BODIES)
    @settings(REPRODUCIBLE, max_examples=400)
    def check(body: bytes) -> None:
        nonlocal acknowledged
        response = send(server, body, {"Connection": None}, session=session)
        statuses[response.status_code] += 1
        assert response.status_code in ERROR_CODES.keys() | {201}, (body, response.text[:300])
        answer = response.json()
        if response.status_code == 201:
            assert answer["success"] is True
            acknowledged += stored_by(answer)
        else:
            assert (
                answer["success"] is False and answer["code"] in ERROR_CODES[response.status_code]
            )

    try:
        check()
    finally:
        session.close()
    assert count(rows) == acknowledged
    line = (
        f"webhook fuzzer: {sum(statuses.values())} bodies, answers "
        f"{dict(sorted(statuses.items()))}, {acknowledged} rows stored = acknowledged"
    )
    REPORT.append(line)
    print(line)
    assert statuses[201] and statuses[400]  # it reached both sides of the rules
