"""In-process cost of checking one payload: the webhook body, a batch, a socket send, a read
request and an inbox query, each timed through the service's entry point (no app, no I/O).

    .venv/bin/python bench/validation_cost.py [--repeat 7] [--number 20000]

Prints the best of ``--repeat`` runs, in microseconds of this process's CPU per call (CPU time,
not wall time: the machine is shared), as bench/PROFILE.md quotes it. Run it against another
checkout with ``PYTHONPATH=<that checkout>`` to compare (the entry points are the same).
"""

from __future__ import annotations

import argparse
import time
import timeit
from collections.abc import Callable

from app.services import validation

try:
    from app.services import inbox
except ImportError:  # a checkout from before the services split (issue 16)
    from app.services import notifications as inbox  # type: ignore[no-redef]

WEBHOOK = {
    "recipientId": "user-123",
    "message": "Your order #1234 has shipped",
    "type": "order.shipped",
    "data": {"orderId": 1234, "carrier": "DHL", "items": [{"sku": "A-1", "qty": 2}]},
}
BATCH = {**{k: v for k, v in WEBHOOK.items() if k != "recipientId"}}
BATCH["recipientIds"] = [f"user-{n}" for n in range(100)]
READ = {"ids": [5, 6, 7, 8]}
QUERY = {"limit": ["50"], "after": ["12345"], "status": ["unread"]}

CASES: dict[str, Callable[[], object]] = {
    "webhook body (validate_send)": lambda: validation.validate_send(WEBHOOK, 2000),
    "socket send (validate_notification)": lambda: validation.validate_notification(WEBHOOK, 2000),
    "batch of 100 (validate_send)": lambda: validation.validate_send(BATCH, 2000),
    "mark_read (parse_read_request)": lambda: inbox.parse_read_request(READ),
    "inbox query (parse_page_request)": lambda: inbox.parse_page_request(QUERY),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000)
    options = parser.parse_args()
    for name, case in CASES.items():
        number = max(1, options.number // 50) if "batch" in name else options.number
        timer = timeit.Timer(case, timer=time.process_time)
        best = min(timer.repeat(repeat=options.repeat, number=number))
        print(f"{name:40s} {best / number * 1e6:8.2f} us")


if __name__ == "__main__":
    main()
