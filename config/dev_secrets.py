"""Development secrets: generated once and kept in the instance folder.

Kept on disk so that ``flask issue-token`` (another process) signs with the same secret as the
running server, and restarts do not invalidate tokens a developer has pasted somewhere.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

FILE_NAME = "dev-secrets.json"


def load_or_create(instance_path: str) -> dict[str, str]:
    """``{"JWT_SECRET": ..., "WEBHOOK_API_KEY": ...}``, created with mode 0600 on first use."""
    path = Path(instance_path) / FILE_NAME
    if path.exists():
        stored = json.loads(path.read_text())
        if stored.get("JWT_SECRET") and stored.get("WEBHOOK_API_KEY"):
            return {
                "JWT_SECRET": stored["JWT_SECRET"],
                "WEBHOOK_API_KEY": stored["WEBHOOK_API_KEY"],
            }
    path.parent.mkdir(parents=True, exist_ok=True)
    values = {
        "JWT_SECRET": secrets.token_urlsafe(48),
        "WEBHOOK_API_KEY": "dev-" + secrets.token_urlsafe(24),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return values
