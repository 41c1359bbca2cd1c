"""CPU per webhook through the real app, in one process, without the network: how much each
request hook costs. Needs MariaDB and Redis on 127.0.0.1 and the ``notify_bench`` database that
``bench/run.sh`` migrates.

    .venv/bin/python bench/app_cpu.py                  # the app as it is
    DROP=Limiter .venv/bin/python bench/app_cpu.py     # without the hooks whose name contains it
    .venv/bin/python bench/app_cpu.py --profile        # cProfile, by own time

32 greenlets send 3,000 webhooks to an offline recipient (stored, not pushed), as gunicorn's
gevent worker would run them; the figure is this process's CPU, so the database and Redis do
not count, and neither does pywsgi (see the floor scenario for that).
"""

from gevent import monkey

monkey.patch_all()

import cProfile  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

KEY = "bench-webhook-key-0123456789abcdef"
os.environ.update(
    JWT_SECRET="bench-jwt-secret-0123456789abcdef0123456789abcdef",  # noqa: S106 - bench only
    WEBHOOK_API_KEY=KEY,
    REDIS_URL="redis://127.0.0.1:6379/0",
    REDIS_PREFIX=os.environ.get("BENCH_DB", "notify_bench") + "-cpu",
    DB_HOST="127.0.0.1",
    DB_USER="root",
    DB_PASSWORD="",
    DB_NAME=os.environ.get("BENCH_DB", "notify_bench"),
    HTTP_RATE_LIMIT_MAX="100000000",
    WEBHOOK_RATE_LIMIT="100000000/minute",
    APP_ENV="production",
    LOG_LEVEL="WARNING",
    ALLOWED_ORIGINS="http://127.0.0.1:3300",
)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app  # noqa: E402
from app.message_queue import start  # noqa: E402

REQUESTS = 3000
CONCURRENCY = 32
BODY = json.dumps({"recipientId": "bench-offline", "message": "bench:cpu"}).encode()


def main() -> None:
    app = create_app()
    start()
    drop = [name for name in os.environ.get("DROP", "").split(",") if name]
    for hooks in (app.before_request_funcs, app.after_request_funcs):
        for scope, funcs in hooks.items():
            hooks[scope] = [f for f in funcs if not any(d in repr(f) for d in drop)]

    def one() -> None:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/webhook/notify",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "3300",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(BODY),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(BODY)),
            "HTTP_X_API_KEY": KEY,
            "HTTP_HOST": "127.0.0.1:3300",
            "REMOTE_ADDR": "127.0.0.1",
        }
        status: list[str] = []
        b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        if not status[0].startswith("201"):
            raise SystemExit(f"unexpected answer {status[0]}")

    def run() -> None:
        def worker() -> None:
            for _ in range(REQUESTS // CONCURRENCY):
                one()

        gevent.joinall([gevent.spawn(worker) for _ in range(CONCURRENCY)])

    for _ in range(200):  # warm up: connections, caches
        one()
    cpu, wall = time.process_time(), time.perf_counter()
    if "--profile" in sys.argv:
        profile = cProfile.Profile()
        profile.runcall(run)
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
        if os.environ.get("PROFILE_OUT"):
            profile.dump_stats(os.environ["PROFILE_OUT"])
    else:
        run()
    done = REQUESTS // CONCURRENCY * CONCURRENCY
    print(
        f"{1e3 * (time.process_time() - cpu) / done:.3f} ms CPU per webhook "
        f"({done / (time.perf_counter() - wall):.0f}/s in this process; drop={drop or 'nothing'})"
    )


if __name__ == "__main__":
    main()
