"""Abuse 6: hostile JWTs, at a real gunicorn process, on both doors (the Socket.IO handshake and
the inbox API). Each is refused with the code the contract names, and nobody gets in.

The integration suite checks the decoding rules on the Flask test client
(``tests/integration/test_sockets.py``, ``test_inbox.py``); here the same tokens cross a real
server, its worker, its headers limits and the real python-socketio client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt as pyjwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import JWT_SECRET
from tests.faults.conftest import StartServer
from tests.faults.raw import ACCEPTED, closed_by_server, engineio_socket, handshake, refused_as

NOW = int(time.time())
PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = PRIVATE_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def part(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def by_hand(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A token built without PyJWT's guards: ``alg: none`` or HS256 keyed with any bytes."""
    head = part(json.dumps(header).encode())
    body = part(json.dumps(claims).encode())
    if key is None:
        return f"{head}.{body}."
    mac = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(mac)}"


def signed(claims: dict[str, Any], key: Any = JWT_SECRET, algorithm: str = "HS256") -> str:
    return pyjwt.encode(claims, key, algorithm=algorithm)


GOOD = {"sub": "mallory", "exp": NOW + 600}
HOSTILE: dict[str, tuple[str, str]] = {
    "alg none": (by_hand({"alg": "none", "typ": "JWT"}, GOOD, None), "token_invalid"),
    "alg None, signed anyway": (
        by_hand({"alg": "None"}, GOOD, JWT_SECRET.encode()),
        "token_invalid",
    ),
    "HS256 with another key": (signed(GOOD, "another-secret-" + "z" * 40), "token_invalid"),
    "RS256 with a private key": (signed(GOOD, PRIVATE_KEY, "RS256"), "token_invalid"),
    "HS256 keyed with the public key (RS/HS confusion)": (
        by_hand({"alg": "HS256", "typ": "JWT"}, GOOD, PUBLIC_PEM),
        "token_invalid",
    ),
    "expired": (signed({"sub": "mallory", "exp": NOW - 3600}), "token_expired"),
    "nbf in the future": (signed(GOOD | {"nbf": NOW + 3600}), "token_invalid"),
    "no sub": (signed({"exp": NOW + 600}), "token_invalid"),
    "sub an object": (signed({"sub": {"id": "alice"}, "exp": NOW + 600}), "token_invalid"),
    "sub a list": (signed({"sub": ["alice"], "exp": NOW + 600}), "token_invalid"),
    "sub true": (signed({"sub": True, "exp": NOW + 600}), "token_invalid"),
    "sub a float": (signed({"sub": 1.5, "exp": NOW + 600}), "token_invalid"),
    "sub empty": (signed({"sub": "", "exp": NOW + 600}), "token_invalid"),
    "sub with a room separator": (signed({"sub": "a b:c", "exp": NOW + 600}), "token_invalid"),
    "garbage": ("not-a-token", "token_invalid"),
    "three garbage parts": ("a.b.c", "token_invalid"),
    "bare Bearer": ("Bearer ", "token_missing"),
    "blank": ("   ", "token_missing"),
    "9 KB": (signed(GOOD | {"pad": "p" * 9000}), "token_invalid"),
}


def inbox(url: str, authorization: str) -> requests.Response:
    return requests.get(
        f"{url}/api/notifications",
        headers={"Authorization": authorization, "Connection": "close"},
        timeout=10,
    )


def test_hostile_tokens_are_refused_at_the_handshake_and_the_inbox_of_a_real_server(
    start_server: StartServer,
) -> None:
    server = start_server()
    wrong: dict[str, Any] = {}
    for name, (token, code) in HOSTILE.items():
        refusal = handshake(server.url, {"token": token})
        if refusal != refused_as(code):
            wrong[f"handshake, {name}"] = refusal
        header = token if token.lower().startswith("bearer") else f"Bearer {token}"
        response = inbox(server.url, header)
        body = response.json()
        if (response.status_code, body.get("code"), body.get("details")) != (
            401,
            "unauthorized",
            {"token": code},
        ):
            wrong[f"inbox, {name}"] = (response.status_code, body)
    assert not wrong, wrong
    # The very same server lets a good token in on both doors (the refusals above are real).
    good = signed(GOOD)
    assert handshake(server.url, {"token": good}) == ACCEPTED
    assert inbox(server.url, f"Bearer {good}").status_code == 200


def test_a_100_kb_token_is_refused_without_harm_on_both_doors(start_server: StartServer) -> None:
    """The handshake's packet is over ``max_http_buffer_size`` (64 KiB), so Engine.IO drops the
    connection before Socket.IO reads it; the HTTP header is over the server's header limit
    (gevent's 64 KiB line), answered by ``gunicorn_worker`` in the JSON error shape."""
    server = start_server()
    huge = signed(GOOD | {"pad": "p" * 100_000})
    assert len(huge) > 100_000
    ws = engineio_socket(server)
    ws.send("40" + json.dumps({"token": huge}))
    dropped = closed_by_server(ws.sock, within=5)
    ws.shutdown()
    assert dropped, "a 100 KB handshake packet was not refused"
    response = inbox(server.url, f"Bearer {huge}")
    # Over the HTTP server's header limit: refused before the app, in the same error shape.
    assert response.status_code == 400, response.status_code
    assert response.json()["code"] == "validation_error"
    # The process is unharmed.
    assert handshake(server.url, {"token": signed(GOOD)}) == ACCEPTED
    print(f"100 KB token: handshake connection closed; inbox {response.status_code}")


def test_a_malformed_auth_object_is_refused(start_server: StartServer) -> None:
    server = start_server()
    cases: list[tuple[Any, str]] = [
        (None, "token_missing"),
        ("a string", "token_missing"),
        (["token"], "token_missing"),
        ({"token": None}, "token_missing"),
        ({"token": 42}, "token_invalid"),
        ({"token": ["a.b.c"]}, "token_invalid"),
    ]
    answers = {repr(auth): handshake(server.url, auth) for auth, _ in cases}
    assert answers == {repr(auth): refused_as(code) for auth, code in cases}
