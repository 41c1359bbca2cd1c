"""The client's address: ProxyFix for ``TRUSTED_PROXIES`` proxies, never a spoofable header."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix


def install_proxy_fix(app: Flask, trusted_proxies: int) -> None:
    """Trust exactly ``trusted_proxies`` hops of X-Forwarded-*; with 0, trust none.

    With N trusted proxies Werkzeug takes the N-th address from the right of X-Forwarded-For,
    the one our own proxy appended, so a client cannot choose its address by sending the header.
    """
    if trusted_proxies > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=trusted_proxies,
            x_proto=trusted_proxies,
            x_host=trusted_proxies,
            x_port=trusted_proxies,
        )


def client_address() -> str:
    """The limiter's key for anonymous traffic: the post-ProxyFix remote address."""
    return request.remote_addr or "unknown"
