"""``GET /metrics``: this process's metrics in the Prometheus text format.

Also counts, for every route, what only the final HTTP response shows: rate-limit refusals
(429 from Flask-Limiter) and the webhook's responses by status.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

from app.errors import Unauthorized
from app.observability import metrics
from app.security.api_keys import matching_key
from app.services.presence import presence

bp = Blueprint("metrics", __name__)
WEBHOOK_BLUEPRINT = "webhook"


def presented_token() -> str | None:
    """The credentials of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return (credentials.strip() or None) if scheme.lower() == "bearer" else None


@bp.get("/metrics")
def scrape() -> Response:
    """Called by Prometheus; 200 with this process's metrics, 401 in the contract's shape when
    ``METRICS_TOKEN`` is set and the request does not carry it (compared in constant time)."""
    expected: str = current_app.config["METRICS_TOKEN"]
    if expected and matching_key(presented_token(), [expected]) is None:
        metrics.auth_refused("metrics_token_invalid")
        raise Unauthorized(message="A valid metrics token is required (Authorization: Bearer).")
    metrics.sample_presence(presence())
    # The text format Prometheus asks for (OpenMetrics when its Accept header says so).
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(REGISTRY), content_type=content_type)


@bp.after_request
def bearer_challenge(response: Response) -> Response:
    """A 401 names the scheme to use (RFC 6750)."""
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


@bp.after_app_request
def count_response(response: Response) -> Response:
    """Count HTTP rate-limit refusals and webhook responses, whichever code produced them."""
    if response.status_code == 429:
        metrics.rate_limited("http")
    if request.blueprint == WEBHOOK_BLUEPRINT or request.path.startswith("/webhook/"):
        metrics.webhook_responded(response.status_code)
    return response
