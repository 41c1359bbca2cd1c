"""A floor for socket sends: bare python-socketio under the same gunicorn worker as the service
(``bench/run.sh`` measures it with the ``socket`` scenario as ``floor-sio``).

Each socket joins its user's room at connect (the token's ``sub``, read without verifying it);
``send_notification`` emits ``new_notification`` to the recipient's room and acks. Nothing is
stored, limited or logged: what python-engineio, python-socketio and gevent-websocket cost for
one acked event and one emit, under which no handler on this stack can go.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import socketio

sio = socketio.Server(async_mode="gevent", cors_allowed_origins="*")
app = socketio.WSGIApp(sio)
_seq = 0


def subject(auth: Any) -> str:
    token = auth.get("token", "") if isinstance(auth, dict) else ""
    payload = token.split(".")[1] if token.count(".") == 2 else ""
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)) or b"{}")
    return str(claims.get("sub", "anonymous"))


@sio.event
def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    sio.enter_room(sid, f"user:{subject(auth)}")


@sio.on("send_notification")
def send_notification(sid: str, data: Any) -> dict[str, Any]:
    global _seq
    _seq += 1
    notification = {"id": _seq, "recipientId": data["recipientId"], "message": data["message"]}
    sio.emit("new_notification", notification, to=f"user:{data['recipientId']}")
    return {"success": True, "notification": notification}
