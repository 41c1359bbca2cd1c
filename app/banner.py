"""The start-up banner: where the service runs, on what, and how to try it in a minute."""

from __future__ import annotations

import json
import logging
import shlex

from flask import Flask

from app.security.tokens import issue

log = logging.getLogger("notify")
DEMO_USER = "user-123"


def render(app: Flask) -> str:
    config = app.config
    url = config["SERVER_URL"] or f"http://localhost:{config['PORT']}"
    database = config["SQLALCHEMY_DATABASE_URI"].split("@")[-1]
    lines = [
        "",
        "=" * 72,
        f" notify-server ({config['APP_ENV']}) on {url}",
        f" database: {database}",
    ]
    if config["REDIS_URL"]:
        lines.append(" rooms, presence and limits: shared through Redis")
    else:
        lines.append(
            " WARNING: no REDIS_URL - rooms, presence and rate limits are in-process;"
            " run ONE process only"
        )
    if config["GENERATED_SECRETS"]:
        with app.app_context():
            token = issue(DEMO_USER, expires_in=24 * 3600)
        key = config["WEBHOOK_API_KEY"][0]
        body = json.dumps({"recipientId": DEMO_USER, "message": "Hello from curl"})
        lines += [
            " WARNING: development secrets generated and kept in instance/dev-secrets.json;",
            "          set JWT_SECRET and WEBHOOK_API_KEY for anything real.",
            f" webhook key : {key}",
            f" token ({DEMO_USER}, 24 h): {token}",
            " try it:",
            f"   curl -sS -X POST {url}/webhook/notify -H 'Content-Type: application/json' \\",
            f"     -H {shlex.quote('X-API-Key: ' + key)} -d {shlex.quote(body)}",
            " more tokens: .venv/bin/flask issue-token USER_ID --expires 1h",
        ]
    lines.append("=" * 72)
    return "\n".join(lines)


def announce(app: Flask) -> None:
    log.warning("%s", render(app))
