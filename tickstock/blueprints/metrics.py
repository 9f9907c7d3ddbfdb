"""``GET /metrics``: Prometheus exposition for an admin session or the metrics token."""

from __future__ import annotations

from quart import Blueprint, Response

from tickstock.auth import admin_or_metrics_token
from tickstock.metrics import render

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
@admin_or_metrics_token
async def metrics() -> Response:
    """Prometheus metrics (text exposition format)."""
    body, content_type = render()
    return Response(body, content_type=content_type)
