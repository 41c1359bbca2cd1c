"""The current request, ``g`` and app without werkzeug's proxies, for the hot request hooks.

Each attribute read through ``flask.request``, ``flask.g`` or ``current_app`` resolves the proxy
again (about 1 us); the webhook's own hooks made some 35 such reads per request. These return
the objects the proxies stand for; outside a request (an app context for ``current_g`` and
``current_flask_app``) they raise ``LookupError``.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.ctx import RequestContext, _AppCtxGlobals
from flask.globals import _cv_app, _cv_request


def environ_key(header: str) -> str:
    """The WSGI environ key werkzeug's ``EnvironHeaders`` reads ``header`` from: a missing
    header read through ``request.headers`` raises and catches a ``KeyError`` (``get``, ``in``);
    ``request.environ.get(environ_key(name))`` is the same value without it."""
    key = header.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"


def current_request_context() -> RequestContext:
    return _cv_request.get()


def current_request() -> Request:
    return _cv_request.get().request


def current_g() -> _AppCtxGlobals:
    return _cv_app.get().g


def current_flask_app() -> Flask:
    return _cv_app.get().app
