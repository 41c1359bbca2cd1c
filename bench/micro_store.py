"""CPU of storing one 1,000-recipient send on MariaDB: ``storage.row_values`` plus
``storage.insert`` (the statement, PyMySQL reading the RETURNING rows, the stored dicts), each
insert rolled back. With ``--against PATH`` another ``storage.py`` (main's, say) is timed in
turn with this tree's, interleaved, since the machine is noisy.

mariadb -uroot -h127.0.0.1 -e 'CREATE DATABASE notify_bench_store CHARACTER SET utf8mb4'
(then ``flask db upgrade`` with DB_NAME=notify_bench_store, as bench/one_scenario.sh does)
.venv/bin/python -m bench.micro_store [--against /work/main/app/services/storage.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from datetime import datetime
from types import ModuleType
from typing import Any

import sqlalchemy as sa

from app.services import storage
from app.services.validation import NewSend

URL = "mysql+pymysql://root@127.0.0.1:3306/notify_bench_store?charset=utf8mb4"


def load(path: str) -> ModuleType:
    """Another storage module, by file, under a name of its own."""
    spec = importlib.util.spec_from_file_location("bench_storage_other", path)
    assert spec and spec.loader  # noqa: S101 - a path that is not a module
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timer(module: Any, connection: sa.Connection, send: NewSend) -> Callable[[], float]:
    def once() -> float:
        transaction = connection.begin()
        try:
            started = time.thread_time()
            values = module.row_values(send, "sender-1", datetime(2026, 12, 6, 23, 0, 0, 123000))
            stored = module.insert(connection, values)
            spent = time.thread_time() - started
        finally:
            transaction.rollback()
        assert len(stored) == len(send.recipient_ids)  # noqa: S101
        return spent

    return once


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", help="another storage.py to time in turn with this one")
    parser.add_argument("--url", default=URL)
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    send = NewSend(
        tuple(f"user-{i}" for i in range(args.recipients)),
        "Your order #12345 has shipped and is on its way",
        "order_update",
        {"orderId": 12345, "carrier": "ups", "tracking": "1Z999AA10123456784"},
        batch=True,
    )
    modules = {"this": storage}
    if args.against:
        modules = {"against": load(args.against), "this": storage}
    engine = sa.create_engine(args.url)
    with engine.connect() as connection:
        timers = {name: timer(module, connection, send) for name, module in modules.items()}
        for once in timers.values():
            once()  # warm: the connection, the statement caches
        best = dict.fromkeys(timers, float("inf"))
        for _ in range(args.rounds):
            spent = {name: float("inf") for name in timers}
            for _ in range(args.repeats):
                for name, once in timers.items():  # one call each in turn: the same noise
                    spent[name] = min(spent[name], once())
            for name, value in spent.items():
                best[name] = min(best[name], value)
            print(", ".join(f"{n} {t * 1000:.2f}" for n, t in spent.items()), "ms CPU (best)")
        print("best of all:", ", ".join(f"{n} {t * 1000:.2f} ms" for n, t in best.items()))
    engine.dispose()


if __name__ == "__main__":
    main()
