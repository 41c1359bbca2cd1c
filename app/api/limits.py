"""HTTP rate limits (Flask-Limiter), one limiter per application.

- Anonymous traffic: ``HTTP_RATE_LIMIT_MAX`` per ``HTTP_RATE_LIMIT_WINDOW`` minutes per client
  address, on every route but ``/health``. Webhook calls with a wrong or missing key count here,
  which slows key guessing.
- Webhook calls with a valid key: ``WEBHOOK_RATE_LIMIT`` per key instead, so a busy backend is
  not throttled by the anonymous limit.
- Inbox calls with a valid bearer token: the same ``HTTP_RATE_LIMIT_MAX`` per window, but per
  user (``sub``) and shared by the inbox routes, so many users behind one NAT address are not
  limited together. Inbox calls without a valid token count on the per-address limit. CORS
  preflights of the inbox count on neither: a browser sends one before its authenticated calls
  and never with the token, so counting them per address would throttle those users together.
- The demo page's files (``app.web``) are not limited, like ``/health``; its development token
  endpoint is a blueprint of its own and counts on the per-address limit.

The limiter is made per app rather than as a module singleton because Flask-Limiter keeps the
first app's settings (defaults, key prefix) on the instance, and tests build many apps.

The ``RateLimit-*`` headers are written on 429 responses only, and each route's limits are
resolved once (``app.patches.flask_limiter.HeadersOn429Limiter``).
"""

from __future__ import annotations

import flask_limiter
from flask import Flask

from app.api import health, inbox, metrics, webhook
from app.patches.flask_limiter import DirectCheck, HeadersOn429Limiter
from app.request_locals import current_request
from app.security.authentication import Scheme, caller
from app.security.proxy import client_address
from app.services import limit_storage  # noqa: F401 - registers the notify+redis scheme
from app.web import bp as demo_page

#: The hot webhook route, whose limit is checked directly (``DirectCheck``).
WEBHOOK_PATH = "/webhook/notify"


def authenticated_traffic() -> bool:
    """Requests that count on a limit of their own (per key, per user), not per address: a
    user's calls, and a webhook key's POSTs."""
    who = caller()
    if who is None or who.scheme is Scheme.METRICS:
        return False
    return who.scheme is Scheme.USER or current_request().method == "POST"


def caller_bucket() -> str:
    """The caller's own bucket (only asked when ``anonymous`` is False)."""
    who = caller()
    return who.bucket() if who is not None else ""


def anonymous() -> bool:
    return caller() is None


def inbox_preflight() -> bool:
    request = current_request()
    return (
        request.blueprint == inbox.bp.name
        and request.method == "OPTIONS"
        and "Access-Control-Request-Method" in request.headers
    )


def exempt_from_address_limit() -> bool:
    return authenticated_traffic() or inbox_preflight()


def init_http_limits(app: Flask) -> flask_limiter.Limiter:
    """Every ``RATELIMIT_*`` setting is written by ``config.profiles`` (the Redis pool to share
    is added to its storage options by ``app.redis_client.make_redis``)."""
    config = app.config
    per_window = config["RATELIMIT_DEFAULT"]
    limiter = HeadersOn429Limiter(
        key_func=client_address, default_limits_exempt_when=exempt_from_address_limit
    )
    limiter.init_app(app)
    limiter.exempt(health.bp)
    limiter.exempt(metrics.bp)
    limiter.exempt(demo_page)  # static files; its token endpoint is another blueprint
    limiter.limit(
        config["WEBHOOK_RATE_LIMIT"],
        key_func=caller_bucket,
        exempt_when=anonymous,
        override_defaults=False,
    )(webhook.bp)
    limiter.shared_limit(
        per_window,
        scope="inbox",
        key_func=caller_bucket,
        exempt_when=anonymous,
        override_defaults=False,
    )(inbox.bp)
    # The webhook's limits checked through ``limits`` directly, with Flask-Limiter's storage,
    # keys and answers (app.patches.flask_limiter.DirectCheck).
    DirectCheck(limiter, [WEBHOOK_PATH]).install(app)
    return limiter
