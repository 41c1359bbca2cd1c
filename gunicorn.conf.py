"""gunicorn settings for notify-server; no application imports here (preload stays off).

One worker per gunicorn process: Socket.IO's long-polling needs every request of a session to
reach the process that holds it, and gunicorn's balancing between its workers is not sticky.
Scale with more processes (or machines) behind a sticky load balancer, sharing rooms through
Redis; see the README.
"""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '3000')}"  # noqa: S104
# geventwebsocket.gunicorn.workers.GeventWebSocketWorker, with timeouts on stalled clients.
worker_class = "gunicorn_worker.Worker"
workers = 1
# Connections a worker accepts at once (each socket is one greenlet).
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "20000"))
# The gevent worker notifies the arbiter from its own loop, so long-lived sockets are fine.
timeout = 30
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "15"))
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl by default; several processes on
# one machine would fight over it. Nothing here uses it.
control_socket_disable = True
preload_app = False
