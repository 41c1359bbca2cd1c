"""Entry point: gevent patching first, then the app; ``python wsgi.py`` runs the dev server.

gunicorn's gevent worker patches in ``init_process`` before importing this module, so the patch
here is guarded and runs only when nothing patched before (``python wsgi.py``).
"""

from gevent import monkey

if not monkey.is_module_patched("socket"):
    monkey.patch_all()

from functools import partial  # noqa: E402

from app import create_app  # noqa: E402
from app.banner import announce  # noqa: E402
from app.extensions import socketio  # noqa: E402
from app.gc_policy import GcManager  # noqa: E402
from app.message_queue import start as start_message_queue  # noqa: E402
from app.sockets import (
    control,  # noqa: E402
    sessions,  # noqa: E402
)
from app.sockets.lifecycle import install_clean_shutdown  # noqa: E402

app = create_app()
# Listen to the other processes before accepting a single socket (see app.message_queue.start).
start_message_queue()
# Revocations from other processes end this one's sockets too (see app.sockets.control).
control.start(app)
# A SIGTERM closes the sockets and takes their users offline at once (see app.sockets.lifecycle).
install_clean_shutdown(app)
announce(app)
# Start-up and connect bursts frozen out of the full collections (see app.gc_policy).
gc_manager = GcManager(
    partial(sessions.count, app),
    socketio.sleep,
    app.config["GC_PAUSE_LOG_MS"],
    app.config["GC_FREEZE"],
)
gc_manager.install()
sessions.on_change = gc_manager.poke
socketio.start_background_task(gc_manager.run)

if __name__ == "__main__":
    socketio.run(app, host=app.config["HOST"], port=app.config["PORT"])
