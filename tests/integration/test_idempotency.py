"""The webhook's ``Idempotency-Key``: repeats answer the same and store nothing, races included."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import IdempotencyKey, utcnow
from app.security.api_keys import key_id
from app.services import idempotency
from tests.conftest import API_KEY, Rows, SocketClient, webhook
from tests.integration.test_webhook import assert_error

pytestmark = pytest.mark.integration
BODY = {"recipientId": "alice", "message": "Your order shipped"}
BATCH = {"recipientIds": ["alice", "bob", "carol"], "message": "Sale starts now"}


def keyed(client: FlaskClient, body: Any, key: str = "order-42", api_key: str = API_KEY) -> Any:
    """POST ``body`` with ``Idempotency-Key: key``, authenticated by ``api_key``."""
    return webhook(client, body, key=api_key, headers={"Idempotency-Key": key})


def age(app: Flask, delta: timedelta) -> None:
    """Make every stored idempotency key ``delta`` older."""
    with app.app_context():
        for row in db.session.scalars(sa.select(IdempotencyKey)):
            row.created_at -= delta  # in Python: SQLite has no datetime arithmetic
        db.session.commit()
        db.session.remove()


def test_a_repeat_gets_the_first_answer_and_stores_nothing(client: FlaskClient, rows: Rows) -> None:
    first = keyed(client, BODY)
    assert first.status_code == 201
    again = keyed(client, BODY)
    assert again.status_code == 201
    assert again.get_data() == first.get_data()
    assert [row["id"] for row in rows("notifications")] == [first.get_json()["notification"]["id"]]
    [stored] = rows("idempotency_keys")
    assert stored["api_key_id"] == key_id(API_KEY) and stored["idempotency_key"] == "order-42"
    assert stored["response_status"] == 201 and stored["completed_at"] is not None
    assert idempotency.decode(stored["response_body"]) == first.get_json()
    assert API_KEY.encode() not in b"".join(str(value).encode() for value in stored.values())


def test_a_repeated_batch_gets_the_first_answer_and_stores_nothing(
    client: FlaskClient, rows: Rows
) -> None:
    first = keyed(client, BATCH)
    again = keyed(client, BATCH)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and len(first.get_json()["notifications"]) == 3
    assert len(rows("notifications")) == 3 and len(rows("idempotency_keys")) == 1


def test_the_same_key_with_another_body_is_a_conflict(client: FlaskClient, rows: Rows) -> None:
    assert keyed(client, BODY).status_code == 201
    body = assert_error(keyed(client, BODY | {"message": "Another"}), 409, "conflict")
    assert "Idempotency-Key" in body["details"]
    assert assert_error(keyed(client, BATCH), 409, "conflict")
    assert len(rows("notifications")) == 1


def test_key_order_spacing_and_where_the_api_key_is_do_not_change_the_body(
    client: FlaskClient, rows: Rows
) -> None:
    first = keyed(client, BODY)
    reordered = client.post(
        "/webhook/notify",
        data=f'{{ "message" : "Your order shipped", "apiKey": "{API_KEY}", "recipientId":"alice"}}',
        headers={"Idempotency-Key": "order-42", "Content-Type": "application/json"},
    )
    assert reordered.status_code == 201 and reordered.get_data() == first.get_data()
    assert len(rows("notifications")) == 1


def test_keys_of_different_api_keys_never_collide(
    make_app: Callable[..., Flask], rows: Rows
) -> None:
    other = "another-webhook-key-0123456789"
    client = make_app(WEBHOOK_API_KEY=f"{API_KEY},{other}").test_client()
    first = keyed(client, BODY)
    second = keyed(client, BODY | {"message": "Another"}, api_key=other)
    assert first.status_code == second.status_code == 201
    assert second.get_json()["notification"]["id"] != first.get_json()["notification"]["id"]
    assert len(rows("notifications")) == 2
    assert {row["api_key_id"] for row in rows("idempotency_keys")} == {
        key_id(API_KEY),
        key_id(other),
    }


def test_a_failed_request_is_not_remembered(client: FlaskClient, rows: Rows) -> None:
    assert_error(keyed(client, {"recipientId": "alice"}), 400, "validation_error")
    assert rows("idempotency_keys") == []
    assert keyed(client, BODY).status_code == 201
    assert len(rows("notifications")) == 1


@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, "clé", "tab\there", "bell\x07"],
    ids=["empty", "256 characters", "not ASCII", "a tab", "a control character"],
)
def test_an_idempotency_key_outside_the_rules_is_refused(
    client: FlaskClient, rows: Rows, key: str
) -> None:
    body = assert_error(keyed(client, BODY, key=key), 400, "validation_error")
    assert body["details"] == {"Idempotency-Key": "must be 1-255 printable ASCII characters"}
    assert rows("notifications") == [] and rows("idempotency_keys") == []


@pytest.mark.parametrize("key", ["k", "~" * 255, "a b!{}\"'<>"])
def test_idempotency_key_boundaries_are_accepted(client: FlaskClient, rows: Rows, key: str) -> None:
    assert keyed(client, BODY, key=key).status_code == 201
    assert keyed(client, BODY, key=key).status_code == 201
    assert [row["idempotency_key"] for row in rows("idempotency_keys")] == [key]
    assert len(rows("notifications")) == 1


def test_keys_are_compared_exactly(client: FlaskClient, rows: Rows) -> None:
    assert keyed(client, BODY, key="Order-42").status_code == 201
    assert keyed(client, BODY, key="order-42").status_code == 201
    assert len(rows("notifications")) == 2


def test_a_key_older_than_a_day_is_forgotten_and_used_afresh(
    app: Flask, client: FlaskClient, rows: Rows
) -> None:
    first = keyed(client, BODY).get_json()["notification"]
    [old] = rows("idempotency_keys")
    age(app, timedelta(hours=24, seconds=1))
    second = keyed(client, BODY | {"message": "Another"})  # no conflict: the old use is gone
    assert second.status_code == 201
    assert second.get_json()["notification"]["id"] != first["id"]
    assert len(rows("notifications")) == 2
    [stored] = rows("idempotency_keys")
    assert stored["request_hash"] != old["request_hash"]
    assert idempotency.decode(stored["response_body"]) == second.get_json()


def test_a_key_younger_than_a_day_is_still_remembered(
    app: Flask, client: FlaskClient, rows: Rows
) -> None:
    first = keyed(client, BODY)
    age(app, timedelta(hours=23))
    assert keyed(client, BODY).get_data() == first.get_data()
    assert len(rows("notifications")) == 1


def test_the_remembered_answer_is_the_one_given_after_delivery(
    connect: Callable[..., SocketClient], client: FlaskClient, rows: Rows
) -> None:
    alice = connect("alice")
    first = keyed(client, BODY)
    assert first.get_json()["notification"]["status"] == "delivered"
    assert len(alice.wait_for("new_notification")) == 1
    again = keyed(client, BODY)
    assert again.get_data() == first.get_data()
    assert len(alice.events("new_notification")) == 1  # a repeat pushes nothing either


def remember_unfinished(app: Flask, body: dict[str, Any], answer: dict[str, Any]) -> None:
    """The row a request leaves between its commit and its final answer."""
    with app.app_context():
        db.session.add(
            IdempotencyKey(
                api_key_id=key_id(API_KEY),
                idempotency_key="order-42",
                request_hash=idempotency.fingerprint(body),
                response_status=201,
                response_body=idempotency.encode(answer),
                created_at=utcnow(),
                completed_at=None,
            )
        )
        db.session.commit()
        db.session.remove()


def test_a_repeat_waits_for_the_first_requests_final_answer(
    app: Flask, client: FlaskClient, rows: Rows
) -> None:
    remember_unfinished(app, BODY, {"success": True, "notification": {"status": "pending"}})
    final = {"success": True, "notification": {"status": "delivered"}}

    def finish() -> None:
        time.sleep(0.3)
        with app.app_context():
            db.session.execute(
                sa.update(IdempotencyKey).values(
                    response_body=idempotency.encode(final), completed_at=utcnow()
                )
            )
            db.session.commit()
            db.session.remove()

    finisher = threading.Thread(target=finish)
    finisher.start()
    response = keyed(client, BODY)
    finisher.join()
    assert response.status_code == 201 and response.get_json() == final
    assert rows("notifications") == []


def test_a_repeat_gives_the_answer_at_commit_when_the_final_one_never_comes(
    app: Flask, client: FlaskClient, rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency, "WAIT_SECONDS", 0.2)
    at_commit = {"success": True, "notification": {"status": "pending"}}
    remember_unfinished(app, BODY, at_commit)
    response = keyed(client, BODY)
    assert response.status_code == 201 and response.get_json() == at_commit
    assert rows("notifications") == []


def race(make_app: Callable[..., Flask], body: dict[str, Any], racers: int) -> list[Any]:
    """``racers`` apps (each with its own connection pool, like separate processes) post the
    same keyed body at the same moment; their responses."""
    apps = [make_app() for _ in range(racers)]
    start = threading.Barrier(racers)
    responses: list[Any] = [None] * racers

    def run(index: int) -> None:
        client = apps[index].test_client()
        start.wait()
        responses[index] = keyed(client, body)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for used in apps:
        with used.app_context():
            db.engine.dispose()
    return responses


@pytest.mark.mariadb
@pytest.mark.parametrize("body", [BODY, BATCH], ids=["one recipient", "a batch"])
def test_concurrent_requests_with_one_key_store_one_send_and_answer_alike(
    make_app: Callable[..., Flask], rows: Rows, body: dict[str, Any]
) -> None:
    responses = race(make_app, body, racers=10)
    assert all(response is not None for response in responses)
    assert {response.status_code for response in responses} == {201}
    assert len({response.get_data() for response in responses}) == 1
    answer = responses[0].get_json()
    sent = answer.get("notifications") or [answer["notification"]]
    assert sorted(row["id"] for row in rows("notifications")) == sorted(n["id"] for n in sent)
    assert len(rows("idempotency_keys")) == 1
