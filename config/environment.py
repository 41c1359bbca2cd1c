"""Where settings come from: the process environment over an optional ``.env`` in the project
root. Read by the app's profiles (``config.load_config``) and the serving settings
(``config.serving``) alike."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def read_environment() -> dict[str, str]:
    """The process environment over an optional ``.env`` in the project root."""
    values = {k: v for k, v in dotenv_values(PROJECT_ROOT / ".env").items() if v is not None}
    return values | dict(os.environ)
