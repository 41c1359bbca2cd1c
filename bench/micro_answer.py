"""CPU of the webhook's 201 answer for 1,000 recipients: Flask's ``json.response`` (one encode of
the whole dict) against ``json_response`` (the notifications encoded once per shape), the same
bytes; and the answer ``_send_once`` stores with the key. Interleaved rounds, best of each, by
``time.thread_time``.

.venv/bin/python -m bench.micro_answer
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from typing import Any

from app.patches.flask import NotifyFlask, json_response
from app.services import idempotency
from tests.unit.test_shaped_answers import sent


def best(run: Callable[[], Any], repeats: int) -> float:
    started = time.thread_time()
    for _ in range(repeats):
        run()
    return (time.thread_time() - started) / repeats


def main(recipients: int = 1000, repeats: int = 20, rounds: int = 7) -> None:
    app = NotifyFlask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # as create_app sets it
    users = [f"user-{i}" for i in range(recipients)]
    ids = list(range(10_000_001, 10_000_001 + recipients))
    data = {"orderId": 7, "url": "/orders/7"}
    bodies = {
        "pending": sent(users, ids, data=data),
        "half delivered": sent(users, ids, data=data, pushed=frozenset(range(0, recipients, 2))),
    }
    # An idempotent repeat: the stored answer decoded, no value shared between notifications.
    bodies["repeat (decoded)"] = idempotency.decode(idempotency.encode(bodies["half delivered"]))
    with app.app_context():
        for name, body in bodies.items():
            if json_response(body).get_data() != app.json.response(body).get_data():
                raise AssertionError(name)
            flask_ms, ours_ms = [], []
            for _ in range(rounds):
                flask_ms.append(best(lambda b=body: app.json.response(b), repeats) * 1000)
                ours_ms.append(best(lambda b=body: json_response(b), repeats) * 1000)
            print(
                f"{recipients} notifications, {name}: json.response {min(flask_ms):.2f} ms "
                f"(median {sorted(flask_ms)[rounds // 2]:.2f}), json_response "
                f"{min(ours_ms):.2f} ms (median {sorted(ours_ms)[rounds // 2]:.2f})"
            )
        stored(bodies["half delivered"], repeats, rounds)


def stored_upstream(body: dict[str, Any]) -> bytes:
    """``idempotency.encode`` as on main: one ``json.dumps`` of the whole dict."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return zlib.compress(text.encode("utf-8", "surrogatepass"))


def stored(body: dict[str, Any], repeats: int, rounds: int) -> None:
    """What ``_send_once`` stores with the key (twice a send: at commit and once delivered)."""
    if idempotency.encode(body) != stored_upstream(body):
        raise AssertionError("stored answers differ")
    upstream_ms, ours_ms = [], []
    for _ in range(rounds):
        upstream_ms.append(best(lambda: stored_upstream(body), repeats) * 1000)
        ours_ms.append(best(lambda: idempotency.encode(body), repeats) * 1000)
    print(
        f"stored with the key, half delivered: json.dumps + zlib {min(upstream_ms):.2f} ms, "
        f"idempotency.encode {min(ours_ms):.2f} ms"
    )


if __name__ == "__main__":
    main()
