"""The webhook's answer encoded once per shape (``shaped_response``): Flask's bytes and headers."""

from __future__ import annotations

import json
import zlib
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from app.json_texts import SLOT
from app.models import NotificationDict, Status
from app.patches import flask as flask_patches
from app.patches.flask import EncoderCachingJSONProvider, NotifyFlask
from app.services import delivery, idempotency, storage
from app.services.sending import answer_for
from app.services.validation import NewSend
from tests.conftest import REPRODUCIBLE

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 6, 23, 0, 0, 123000)
LATER = datetime(2026, 12, 6, 23, 0, 0, 456000)


def apps(sort_keys: bool = False, ensure_ascii: bool = True) -> tuple[Flask, Flask]:
    """Ours and upstream Flask's, with the same JSON settings (the app's: keys unsorted)."""
    ours, upstream = NotifyFlask(__name__), Flask(__name__)
    for app in (ours, upstream):
        app.json.sort_keys = sort_keys  # type: ignore[attr-defined]
        app.json.ensure_ascii = ensure_ascii  # type: ignore[attr-defined]
    return ours, upstream


def assert_flasks(body: Any, sort_keys: bool = False, ensure_ascii: bool = True) -> None:
    """Our answer's bytes, headers and status are Flask's; or it fails as Flask's does (a lone
    surrogate, unescaped, is no UTF-8)."""
    ours, upstream = apps(sort_keys, ensure_ascii)
    with upstream.app_context():
        try:
            theirs = upstream.json.response(body)
        except UnicodeEncodeError:
            with ours.app_context(), pytest.raises(UnicodeEncodeError):
                flask_patches.json_response(body)
            return
    with ours.app_context():
        mine = flask_patches.json_response(body)
    assert mine.get_data() == theirs.get_data()
    assert list(mine.headers.items()) == list(theirs.headers.items())
    assert (mine.status, mine.mimetype) == (theirs.status, theirs.mimetype)


def assert_stored_alike(body: Any) -> None:
    """What ``_send_once`` stores with the key is ``json.dumps``'s text (ensure_ascii off)."""
    stored = zlib.decompress(idempotency.encode(body)).decode("utf-8", "surrogatepass")
    assert stored == json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def sent(
    recipients: list[str],
    ids: list[int],
    *,
    message: str = "Hello",
    data: Any = None,
    pushed: frozenset[int] = frozenset(),
    unheard: frozenset[int] = frozenset(),
    batch: bool = True,
) -> dict[str, Any]:
    """The answer ``submit_many`` gives, its notifications made as the send path makes them:
    ``storage._stored``'s copies, ``pushed`` ones shown delivered, ``unheard`` ones back to
    pending (``_deliver_batch``)."""
    send = NewSend(tuple(recipients), message, "info", data, batch=batch)
    values = storage.row_values(send, None, NOW)
    stored = storage._stored(ids, values, storage._runs(values, same_columns=True))
    delivery.mark_delivered([n for i, n in enumerate(stored) if i in pushed], LATER)
    for i in unheard:
        stored[i]["status"] = Status.PENDING.value
        stored[i]["deliveredAt"] = None
    return answer_for(send, stored).body


def notification(i: int, **fields: Any) -> NotificationDict:
    base: dict[str, Any] = {
        "id": i,
        "recipientId": f"user-{i}",
        "senderId": None,
        "type": "info",
        "message": "m",
        "data": None,
        "status": "pending",
        "createdAt": "2026-12-06T23:00:00.123Z",
        "deliveredAt": None,
        "readAt": None,
    }
    base.update(fields)
    return base  # type: ignore[return-value]


USERS = [f"user-{i}" for i in range(50)]
IDS = [10**k + k for k in range(50)]  # 1 to 50 digits
CASES: dict[str, Any] = {
    "one recipient": sent(["alice"], [7], batch=False),
    "a batch of one": sent(["alice"], [7]),
    "a batch, pending": sent(USERS, IDS),
    "a batch, all delivered": sent(USERS, IDS, pushed=frozenset(range(50))),
    "a batch, mixed": sent(USERS, IDS, pushed=frozenset(range(0, 50, 3))),
    "pushed, some unheard": sent(
        USERS, IDS, pushed=frozenset(range(20)), unheard=frozenset({1, 5})
    ),
    "unicode, emoji, quotes": sent(
        ['q"uo\\te', "é", "🎉", "\u2028", "\x00", ""],
        [1, 22, 333, 4444, 55555, 2**70],
        message='héllo "wörld" 😀 \ud800 </script>',
        data={"ünï": "\x1f", "n": [1, 1.0, -0.0, 2.5e300, True, None], "q": {'"': "\\"}},
        pushed=frozenset({0, 4}),
    ),
    "numbers in data": sent(USERS[:3], IDS[:3], data={"a": 1, "b": 1.0, "c": 10**30}),
    "data 1 and 1.0 (equal, not alike)": {
        "success": True,
        "notifications": [
            notification(1, data={"n": 1}),
            notification(2, data={"n": 1.0}),
            notification(3, data={"n": 1}),
        ],
    },
    "a key in another order": {
        "success": True,
        "notifications": [notification(1), dict(reversed(list(notification(2).items())))],
    },
    "the placeholder in a message": sent(USERS[:3], IDS[:3], message=SLOT.format(0)),
    "the placeholder in a recipient": sent([SLOT.format(0), "b", SLOT.format(1)], [1, 2, 3]),
    "the placeholder beside the list": {
        "success": SLOT.format(0),
        "notifications": [notification(1), notification(2)],
    },
    "two lists": {"a": [notification(1), notification(2)], "b": [1, 2.0, "x"], "c": []},
    "an error": {"success": False, "error": "No.", "code": "conflict", "details": {"a": "b"}},
    "not a dict": [notification(1), notification(2)],
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize(("sort_keys", "ensure_ascii"), [(False, True), (True, False)])
def test_an_answer_is_flasks_byte_for_byte(name: str, sort_keys: bool, ensure_ascii: bool) -> None:
    assert_flasks(CASES[name], sort_keys, ensure_ascii)


@pytest.mark.parametrize("name", CASES)
def test_the_answer_stored_with_a_key_is_json_dumps_text(name: str) -> None:
    assert_stored_alike(CASES[name])


def test_in_debug_mode_the_answer_is_flasks_indented() -> None:
    ours, upstream = apps()
    ours.debug = upstream.debug = True
    body = CASES["a batch, mixed"]
    with ours.app_context():
        mine = flask_patches.json_response(body)
    with upstream.app_context():
        theirs = upstream.json.response(body)
    assert mine.get_data() == theirs.get_data() and b"\n  " in mine.get_data()


TEXT = st.text(st.characters(codec=None), max_size=12)
JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
JSON_DATA = st.none() | st.dictionaries(
    TEXT,
    st.recursive(
        JSON_LEAF,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
)


@st.composite
def answers(draw: st.DrawFn) -> dict[str, Any]:
    recipients = draw(st.lists(TEXT, min_size=1, max_size=12))
    count = len(recipients)
    ids = draw(
        st.lists(
            st.integers(min_value=1, max_value=10**20) | st.integers(),
            min_size=count,
            max_size=count,
        )
    )
    pushed = frozenset(draw(st.lists(st.integers(0, count - 1), max_size=count)))
    return sent(
        recipients,
        ids,
        message=draw(TEXT),
        data=draw(JSON_DATA),
        pushed=pushed,
        unheard=frozenset(draw(st.lists(st.sampled_from(sorted(pushed)), max_size=3)))
        if pushed
        else frozenset(),
        batch=draw(st.booleans()) or count > 1,
    )


@settings(REPRODUCIBLE, max_examples=300)
@given(answers(), st.booleans(), st.booleans(), st.booleans())
def test_any_send_is_answered_as_flask_answers_it(
    body: dict[str, Any], sort_keys: bool, ensure_ascii: bool, repeated: bool
) -> None:
    """``repeated``: the answer an idempotent repeat gives, decoded from its stored text (no
    value shared between its notifications, so each column is compared by its text)."""
    if repeated:
        body = idempotency.decode(idempotency.encode(body))
    assert_flasks(body, sort_keys, ensure_ascii)
    assert_stored_alike(body)


class Counting:
    """An encoder that notes what it encodes."""

    def __init__(self, encoder: json.JSONEncoder, encoded: list[Any]) -> None:
        self.encoder, self.encoded = encoder, encoded

    def encode(self, obj: Any) -> str:
        self.encoded.append(obj)
        return self.encoder.encode(obj)


def a_thousand() -> dict[str, Any]:
    return sent(
        [f"ü-{i}-🎉" for i in range(1000)],
        list(range(1, 1001)),
        message="héllo 😀",
        data={"orderId": 7},
        pushed=frozenset(range(0, 1000, 2)),
    )


@pytest.mark.parametrize(("sort_keys", "ensure_ascii"), [(False, True), (True, False)])
def test_a_thousand_notifications_are_encoded_once(
    monkeypatch: pytest.MonkeyPatch, sort_keys: bool, ensure_ascii: bool
) -> None:
    """The answer's dict, then the first notification: two encodes, whatever the count."""
    encoded: list[Any] = []
    upstream = EncoderCachingJSONProvider._encoder

    def counting(self: EncoderCachingJSONProvider, separators: Any) -> Any:
        return Counting(upstream(self, separators), encoded)

    monkeypatch.setattr(EncoderCachingJSONProvider, "_encoder", counting)
    body = a_thousand()
    ours, theirs = apps(sort_keys, ensure_ascii)
    with ours.app_context():
        mine = flask_patches.json_response(body)
    with theirs.app_context():
        assert mine.get_data() == theirs.json.response(body).get_data()
    assert len(encoded) == 2 and encoded[1]["id"] == SLOT.format(0)


def test_the_answer_stored_with_a_key_is_encoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[Any] = []
    monkeypatch.setattr(idempotency, "ENCODER", Counting(idempotency.ENCODER, encoded))
    body = a_thousand()
    assert_stored_alike(body)
    assert len(encoded) == 2 and encoded[1]["id"] == SLOT.format(0)
