"""gunicorn settings for notify-server; no application imports here (preload stays off): the
settings come from ``config.serving``, the code that reads them for the app too (the process
environment over ``.env``).

One worker per gunicorn process: Socket.IO's long-polling needs every request of a session to
reach the process that holds it, and gunicorn's balancing between its workers is not sticky.
Scale with more processes (or machines) behind a sticky load balancer, sharing rooms through
Redis; see the README.
"""

from config.serving import serving_settings

serving = serving_settings()
bind = f"{serving.HOST}:{serving.PORT}"
# geventwebsocket.gunicorn.workers.GeventWebSocketWorker, with timeouts on stalled clients.
worker_class = "gunicorn_worker.Worker"
workers = 1
# Connections a worker accepts at once (each socket is one greenlet).
worker_connections = serving.WORKER_CONNECTIONS
# The gevent worker notifies the arbiter from its own loop, so long-lived sockets are fine.
timeout = 30
graceful_timeout = serving.GRACEFUL_TIMEOUT
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = serving.LOG_LEVEL.lower()
# gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl by default; several processes on
# one machine would fight over it. Nothing here uses it.
control_socket_disable = True
preload_app = False
