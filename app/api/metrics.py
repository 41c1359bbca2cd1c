"""``GET /metrics``: this process's metrics in the Prometheus text format.

Also counts, for every route, what only the final HTTP response shows: rate-limit refusals
(429 from Flask-Limiter) and the webhook's responses by status.
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

from app.observability import metrics
from app.request_locals import current_request
from app.security.authentication import metrics_token_required
from app.services.presence import presence

bp = Blueprint("metrics", __name__)
WEBHOOK_BLUEPRINT = "webhook"


@bp.get("/metrics")
@metrics_token_required
def scrape() -> Response:
    """Called by Prometheus; 200 with this process's metrics, 401 in the contract's shape when
    ``METRICS_TOKEN`` is set and the request does not carry it (compared in constant time)."""
    metrics.sample_presence(presence())
    # The text format Prometheus asks for (OpenMetrics when its Accept header says so).
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(REGISTRY), content_type=content_type)


@bp.after_app_request
def count_response(response: Response) -> Response:
    """Count HTTP rate-limit refusals and webhook responses, whichever code produced them."""
    if response.status_code == 429:
        metrics.rate_limited("http")
    request = current_request()
    if request.blueprint == WEBHOOK_BLUEPRINT or request.path.startswith("/webhook/"):
        metrics.webhook_responded(response.status_code)
    return response
