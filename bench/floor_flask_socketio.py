"""A floor for socket sends: bare Flask-SocketIO under the same gunicorn worker as the service
(``bench/run.sh`` measures it with the ``socket`` scenario as ``floor-fsio``). The same two
handlers as ``floor_socketio.py``, through Flask-SocketIO's ``@socketio.on`` (a Flask request
context per event).
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_socketio import SocketIO, join_room
from floor_socketio import subject

app = Flask(__name__)
socketio = SocketIO(app, async_mode="gevent", cors_allowed_origins="*")
_seq = 0


@socketio.on("connect")
def connect(auth: Any = None) -> None:
    join_room(f"user:{subject(auth)}")


@socketio.on("send_notification")
def send_notification(data: Any) -> dict[str, Any]:
    global _seq
    _seq += 1
    notification = {"id": _seq, "recipientId": data["recipientId"], "message": data["message"]}
    socketio.emit("new_notification", notification, to=f"user:{data['recipientId']}")
    return {"success": True, "notification": notification}
