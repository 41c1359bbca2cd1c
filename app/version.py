"""The service's version, as installed (``/health`` and the OpenAPI document show it)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("notify-server")
except PackageNotFoundError:  # running from a checkout that was not installed
    VERSION = "0.0.0"
