"""PyMySQL's default TLS context made once per process, not once per connection (fenced).

Given no TLS option, PyMySQL 1.1+ connects in "preferred" mode: it builds a TLS context for
every new connection (``Connection._create_ssl_ctx({})``: ``ssl.create_default_context()``,
which loads the system's CA bundle) and uses it only if the server offers TLS. Loading the
bundle costs ~20 ms of CPU, on the gevent loop: ten handshakes that each opened a pool
connection held it ~200 ms at a worker's first connects, and each recycled connection
(``pool_recycle``) holds it 20 ms again (``LOOP_BLOCK_LOG_MS``, bench/PROFILE.md). Here that
default context is built once, the first time, and handed to every later connection: the same
settings (no CA: no certificate check, no host name check), the same preferred mode. An
``SSLContext`` is meant to be shared by many connections. Explicit TLS options (``ssl``,
``ssl_ca``, ...) go through PyMySQL's own code, as before.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

from pymysql import connections  # type: ignore[import-untyped]

from app.patches.fence import fence, replace

fence(
    "pymysql.connections.Connection._create_ssl_ctx",
    "03fb3c944adac2ba172ec686e21ce672b6aad24af746c96bd587b67851ffd546",
    "called with {} for the default context, which create_ssl_ctx builds once",
)
fence(
    "pymysql.connections.Connection.__init__",
    "1183553d14636108392e80ba76e590b6b36b06aed503b1e51bc956a9391f8926",
    "relied on: the preferred mode (no TLS option) asks _create_ssl_ctx({}) and only reads it",
)

_upstream_create_ssl_ctx: Any = connections.Connection._create_ssl_ctx
_default: ssl.SSLContext | None = None
_lock = threading.Lock()


def create_ssl_ctx(self: Any, sslp: Any) -> Any:
    """``Connection._create_ssl_ctx``; the default context (``{}``) built once."""
    global _default
    if not (isinstance(sslp, dict) and not sslp):
        return _upstream_create_ssl_ctx(self, sslp)
    with _lock:
        if _default is None:
            _default = _upstream_create_ssl_ctx(self, {})
        return _default


def install() -> None:
    """Before the first connection (the worker's ``patch``); idempotent."""
    replace(connections.Connection, "_create_ssl_ctx", create_ssl_ctx)
