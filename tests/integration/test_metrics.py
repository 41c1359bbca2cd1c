"""GET /metrics: the METRICS_TOKEN guard, and values that move with sends, replays and refusals.

The registry is global to the test process, so every test compares two scrapes of its own.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import DEADLINE, OpenSocket, webhook

pytestmark = pytest.mark.integration
Samples = dict[str, float]
METRICS_TOKEN = "metrics-token-0123456789abcdef"
FAMILIES = {
    "notify_connected_sockets": "gauge",
    "notify_online_users": "gauge",
    "notify_notifications_stored": "counter",
    "notify_notifications_delivered": "counter",
    "notify_notifications_replayed": "counter",
    "notify_delivery_latency_seconds": "histogram",
    "notify_rate_limit_refusals": "counter",
    "notify_auth_refusals": "counter",
    "notify_webhook_responses": "counter",
    "notify_message_queue_received": "counter",
    "notify_message_queue_listener_cpu_seconds": "counter",
}


def sample_key(name: str, labels: dict[str, str]) -> str:
    inside = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return f"{name}{{{inside}}}" if inside else name


def scrape(client: FlaskClient, headers: dict[str, str] | None = None) -> Samples:
    """Every ``notify_`` sample of one scrape, keyed as the text format writes it."""
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return {
        sample_key(sample.name, sample.labels): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        if family.name.startswith("notify_")
        for sample in family.samples
    }


def grown(before: Samples, after: Samples) -> Samples:
    """What changed between two scrapes, without the histogram's buckets and sum."""
    return {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if after[key] != before.get(key, 0.0) and "_bucket" not in key and "_sum" not in key
    }


def test_metrics_are_served_in_the_prometheus_text_format(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    families = {
        family.name: family.type
        for family in text_string_to_metric_families(response.get_data(as_text=True))
    }
    assert FAMILIES.items() <= families.items()
    assert response.headers["X-Request-ID"]


def test_metrics_need_the_metrics_token_when_one_is_set(make_app: Callable[..., Flask]) -> None:
    client = make_app(METRICS_TOKEN=METRICS_TOKEN).test_client()
    refused_headers = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {METRICS_TOKEN}x"},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
        {"Authorization": METRICS_TOKEN},
    ]
    before = scrape(client, {"Authorization": f"Bearer {METRICS_TOKEN}"})
    for headers in refused_headers:
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        body = response.get_json()
        assert body["success"] is False and body["code"] == "unauthorized"
        assert isinstance(body["error"], str)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "notify_" not in response.get_data(as_text=True)
    after = scrape(client, {"Authorization": f"bearer  {METRICS_TOKEN} "})
    assert grown(before, after) == {
        'notify_auth_refusals_total{code="metrics_token_invalid"}': len(refused_headers)
    }


def test_metrics_are_not_rate_limited(make_app: Callable[..., Flask]) -> None:
    client = make_app(HTTP_RATE_LIMIT_MAX="1").test_client()
    for _ in range(3):
        scrape(client)


def test_a_webhook_send_counts_stored_and_delivered_only_when_the_recipient_is_online(
    app: Flask, client: FlaskClient, open_socket: OpenSocket
) -> None:
    alice = open_socket(app, "alice")
    before = scrape(client)
    assert webhook(client, {"recipientId": "alice", "message": "hi"}).status_code == 201
    assert webhook(client, {"recipientId": "bob", "message": "hi"}).status_code == 201
    after = scrape(client)
    assert grown(before, after) == {
        'notify_notifications_stored_total{entry="webhook"}': 2,
        'notify_notifications_delivered_total{entry="webhook"}': 1,
        "notify_delivery_latency_seconds_count": 1,
        'notify_webhook_responses_total{status="201"}': 2,
    }
    latency = after["notify_delivery_latency_seconds_sum"]
    assert 0 < latency - before["notify_delivery_latency_seconds_sum"] < DEADLINE
    pushed = [pkt for pkt in alice.get_received() if pkt["name"] == "new_notification"]
    assert len(pushed) == 1


def test_a_socket_send_counts_with_the_socket_entry(
    app: Flask, client: FlaskClient, open_socket: OpenSocket
) -> None:
    alice = open_socket(app, "alice")
    open_socket(app, "bob")
    before = scrape(client)
    ack = alice.emit("send_notification", {"recipientId": "bob", "message": "hi"}, callback=True)
    assert ack["success"] is True and ack["notification"]["status"] == "delivered"
    assert grown(before, scrape(client)) == {
        'notify_notifications_stored_total{entry="socket"}': 1,
        'notify_notifications_delivered_total{entry="socket"}': 1,
        "notify_delivery_latency_seconds_count": 1,
    }


def test_a_replay_on_connect_counts_replayed_and_the_pending_ones_delivered(
    app: Flask, client: FlaskClient, open_socket: OpenSocket
) -> None:
    sent = [webhook(client, {"recipientId": "carol", "message": m}) for m in ("a", "b", "c")]
    before = scrape(client)
    open_socket(app, "carol")
    open_socket(app, "carol", lastId=sent[0].get_json()["notification"]["id"])
    assert grown(before, scrape(client)) == {
        "notify_notifications_replayed_total": 5,
        'notify_notifications_delivered_total{entry="replay"}': 3,
        "notify_connected_sockets": 2,
        "notify_online_users": 1,
    }


def test_connected_sockets_and_online_users_are_this_processs_own(
    app: Flask, client: FlaskClient, open_socket: OpenSocket
) -> None:
    def gauges() -> tuple[float, float]:
        samples = scrape(client)
        return samples["notify_connected_sockets"], samples["notify_online_users"]

    assert gauges() == (0, 0)
    alice = open_socket(app, "alice")
    open_socket(app, "alice")
    open_socket(app, "bob")
    assert gauges() == (3, 2)
    alice.disconnect()
    assert gauges() == (2, 2)


def test_rate_limit_and_auth_refusals_are_counted_by_scope_and_code(
    make_app: Callable[..., Flask], token: Callable[..., str], open_socket: OpenSocket
) -> None:
    limited = make_app(
        MESSAGE_QUEUE="0",
        HTTP_RATE_LIMIT_MAX="1",
        SOCKET_RATE_LIMIT_POINTS="1",
        CONNECT_RATE_LIMIT="2/minute",
    )
    client = limited.test_client()
    before = scrape(client)
    alice = open_socket(limited, "alice")
    assert alice.emit("mark_read", {"all": True}, callback=True)["success"] is True
    assert alice.emit("mark_read", {"all": True}, callback=True)["code"] == "rate_limited"
    expired = open_socket(limited, None, token=token("bob", expires_in=-60))
    over_limit = open_socket(limited, "carol")
    assert not expired.is_connected() and not over_limit.is_connected()
    assert webhook(client, {"recipientId": "x", "message": "m"}, key="wrong").status_code == 401
    assert webhook(client, {"recipientId": "x", "message": "m"}, key="wrong").status_code == 429
    assert grown(before, scrape(client)) == {
        'notify_rate_limit_refusals_total{scope="socket_event"}': 1,
        'notify_rate_limit_refusals_total{scope="socket_connect"}': 1,
        'notify_rate_limit_refusals_total{scope="http"}': 1,
        'notify_auth_refusals_total{code="token_expired"}': 1,
        'notify_auth_refusals_total{code="api_key_invalid"}': 1,
        'notify_webhook_responses_total{status="401"}': 1,
        'notify_webhook_responses_total{status="429"}': 1,
        "notify_connected_sockets": 1,
        "notify_online_users": 1,
    }
