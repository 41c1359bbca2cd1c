"""gunicorn: what ``gunicorn_worker.Worker`` relies on (it overrides public methods only).

The heartbeat every ``HEARTBEAT_SECONDS`` waits inside ``notify``: it relies on the gevent
worker's loop calling ``notify()`` then ``gevent.sleep(1.0)`` while ``self.alive``, and on
``notify`` being called with ``alive`` False in the graceful-shutdown loop.
"""

from __future__ import annotations

from app.patches.fence import fence

fence(
    "gunicorn.workers.ggevent.GeventWorker.run",
    "50119854ef8be38caa6e96a5978978de9c42bc0b24ac22228101399e7ef3005d",
    "relied on by gunicorn_worker.Worker.notify: the heartbeat loop, notify() then a 1 s sleep",
)
