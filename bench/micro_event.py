"""CPU of one socket ``send_notification`` through the event path alone, in one process: the
Socket.IO packet in (``Server._handle_eio_message``), python-socketio's dispatch, our dispatcher
(app context, the event current), the log wrapper, the event limit and the in-flight count, and
the ack encoded and handed to Engine.IO, with ``sending.submit`` (storage and delivery) and
Engine.IO's send stubbed out. Needs Redis (the event limit's storage) and MariaDB on 127.0.0.1
and the bench database (``BENCH_DB``, migrated by ``bench/one_scenario.sh`` or ``run.sh``).

    BENCH_DB=notify_bench .venv/bin/python -W ignore -m bench.micro_event [--profile]
"""

from gevent import monkey

monkey.patch_all()

import cProfile  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

os.environ.update(
    JWT_SECRET="bench-jwt-secret-0123456789abcdef0123456789abcdef",  # noqa: S106 - bench only
    WEBHOOK_API_KEY="bench-webhook-key-0123456789abcdef",
    REDIS_URL="redis://127.0.0.1:6379/0",
    REDIS_PREFIX=os.environ.get("BENCH_DB", "notify_bench") + "-event",
    DB_HOST="127.0.0.1",
    DB_USER="root",
    DB_PASSWORD="",
    DB_NAME=os.environ.get("BENCH_DB", "notify_bench"),
    SOCKET_RATE_LIMIT_POINTS="100000000",
    APP_ENV="production",
    LOG_LEVEL="WARNING",
    ALLOWED_ORIGINS="http://127.0.0.1:3300",
)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app  # noqa: E402
from app.extensions import socketio  # noqa: E402
from app.services import sending  # noqa: E402
from app.sockets import sessions  # noqa: E402

EVENTS = 20000
SOCKETS = 64
NOTIFICATION = {"id": 1, "senderId": "u0", "recipientId": "u1", "message": "m", "read": False}


def main() -> None:
    app = create_app()
    server = socketio.server
    sent = [0]

    def send(eio_sid: str, data: Any) -> None:
        sent[0] += 1

    server.eio.send = send
    sending.submit = lambda payload, sender_id: NOTIFICATION  # type: ignore[assignment]
    eio_sids = []
    for n in range(SOCKETS):
        eio_sid = f"e{n}"
        server.environ[eio_sid] = {"flask.app": app, "REMOTE_ADDR": "127.0.0.1"}
        sid = server.manager.connect(eio_sid, "/")
        with app.app_context():
            sessions.bind(sid, f"user{n}")
        eio_sids.append(eio_sid)
    body = json.dumps(["send_notification", {"recipientId": "u1", "message": "bench"}])

    def run(events: int) -> float:
        started = time.thread_time()
        for n in range(events):
            server._handle_eio_message(eio_sids[n % SOCKETS], f"2{n}{body}")
            if n % SOCKETS == SOCKETS - 1:
                gevent.sleep(0)
        gevent.sleep(0)
        return time.thread_time() - started

    run(2000)  # warm
    before = sent[0]
    if "--profile" in sys.argv:
        profile = cProfile.Profile()
        profile.enable()
        run(EVENTS)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
        return
    spent = min(run(EVENTS) for _ in range(5))
    if sent[0] - before < 5 * EVENTS:
        raise SystemExit(f"only {sent[0] - before} acks for {5 * EVENTS} events")
    print(f"{spent / EVENTS * 1e6:.1f} us CPU per event (best of 5 x {EVENTS})")


if __name__ == "__main__":
    main()
