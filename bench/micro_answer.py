"""CPU of the webhook's 201 answer for 1,000 recipients: Flask's ``json.response`` (one encode of
the whole dict) against ``json_response`` (the notifications encoded once per shape), the same
bytes. Interleaved rounds, best of each, by ``time.thread_time``.

.venv/bin/python -m bench.micro_answer
"""

from __future__ import annotations

import time
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


if __name__ == "__main__":
    main()
