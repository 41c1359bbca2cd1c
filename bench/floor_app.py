"""The floor: a Flask app that only parses the webhook's JSON and answers 201, served by the
same gunicorn worker as the service (``bench/run.sh`` runs it as the ``floor`` scenario).

Nothing is stored, limited or delivered: its CPU per request is what pywsgi and Flask cost
before the service does any work, the bound under which no Flask route can go on this machine.
"""

from flask import Flask, request

app = Flask(__name__)


@app.post("/webhook/notify")
def notify() -> tuple[dict[str, object], int]:
    body = request.get_json()
    return {"success": True, "notification": {"id": 1, "recipientId": body["recipientId"]}}, 201
