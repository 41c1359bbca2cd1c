"""Environment text to typed values: durations, numbers, booleans, lists, database URLs.

Every reader appends a sentence to ``problems`` instead of raising, so that start-up can
report every bad variable at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_duration(text: str) -> int:
    """Seconds in ``30d``, ``12h``, ``15m``, ``45s`` or a plain ``3600``; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(text)
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class EnvReader:
    """Reads typed values from one environment mapping, collecting problems."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        value = self.env.get(name)
        return default if value is None else value.strip()

    def is_set(self, name: str) -> bool:
        return bool(self.text(name))

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be a whole number, got {raw!r}")
            return default
        if value < minimum:
            self.problems.append(f"{name} must be at least {minimum}, got {value}")
            return default
        return value

    def seconds(self, name: str, default: float, minimum: float) -> float:
        """A number of seconds, fractions allowed (``0.3``); at least ``minimum``."""
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name} must be a number of seconds, got {raw!r}")
            return default
        if not value >= minimum or value == float("inf"):
            self.problems.append(f"{name} must be at least {minimum} seconds, got {raw}")
            return default
        return value

    def duration(self, name: str, default: int) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            return parse_duration(raw)
        except ValueError:
            self.problems.append(
                f"{name} must be a duration such as 30d, 12h, 15m or 3600, got {raw!r}"
            )
            return default

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if name not in self.env:
            return default
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        self.problems.append(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}")
        return default

    def csv(self, name: str) -> list[str]:
        return [item.strip() for item in self.text(name).split(",") if item.strip()]


def normalise_database_url(url: str) -> str:
    """Heroku-style ``mysql://`` URLs get the PyMySQL driver and utf8mb4."""
    for prefix in ("mysql://", "mariadb://", "mariadb+pymysql://"):
        if url.startswith(prefix):
            url = "mysql+pymysql://" + url[len(prefix) :]
    if url.startswith("mysql+pymysql://") and "charset=" not in url:
        url += ("&" if "?" in url else "?") + "charset=utf8mb4"
    return url


def database_url(reader: EnvReader) -> str | None:
    """``DATABASE_URL`` wins; else the Node server's ``DB_*`` set; else None (embedded SQLite)."""
    if reader.is_set("DATABASE_URL"):
        return normalise_database_url(reader.text("DATABASE_URL"))
    if not (reader.is_set("DB_NAME") or reader.is_set("DB_HOST")):
        return None
    user = quote(reader.text("DB_USER", "root"), safe="")
    password = reader.text("DB_PASSWORD")
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = reader.text("DB_HOST", "localhost")
    port = reader.integer("DB_PORT", 3306, minimum=1)
    name = reader.text("DB_NAME", "notification_db")
    return f"mysql+pymysql://{auth}@{host}:{port}/{quote(name, safe='')}?charset=utf8mb4"
