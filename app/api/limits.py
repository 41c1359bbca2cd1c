"""HTTP rate limits (Flask-Limiter), one limiter per application.

- Anonymous traffic: ``HTTP_RATE_LIMIT_MAX`` per ``HTTP_RATE_LIMIT_WINDOW`` minutes per client
  address, on every route but ``/health``. Webhook calls with a wrong or missing key count here,
  which slows key guessing.
- Webhook calls with a valid key: ``WEBHOOK_RATE_LIMIT`` per key instead, so a busy backend is
  not throttled by the anonymous limit.

The limiter is made per app rather than as a module singleton because Flask-Limiter keeps the
first app's settings (defaults, key prefix) on the instance, and tests build many apps.
"""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter

from app.api import health, webhook
from app.security.proxy import client_address

WEBHOOK_PATH = "/webhook/notify"


def authenticated_traffic() -> bool:
    return request.path == WEBHOOK_PATH and request.method == "POST" and webhook.has_valid_key()


def init_http_limits(app: Flask) -> Limiter:
    config = app.config
    config["RATELIMIT_DEFAULT"] = (
        f"{config['HTTP_RATE_LIMIT_MAX']} per {config['HTTP_RATE_LIMIT_WINDOW']} minute"
    )
    config["RATELIMIT_DEFAULTS_EXEMPT_WHEN"] = authenticated_traffic
    config["RATELIMIT_SWALLOW_ERRORS"] = True  # a Redis outage must not turn into 500s
    limiter = Limiter(key_func=client_address)
    limiter.init_app(app)
    limiter.exempt(health.bp)
    limiter.limit(
        webhook.webhook_rate_limit,
        key_func=webhook.key_bucket,
        exempt_when=lambda: not webhook.has_valid_key(),
        override_defaults=False,
    )(webhook.bp)
    return limiter
