"""Health: a public summary for load balancers and a detailed view for operators."""

from __future__ import annotations

from quart import Blueprint, Response, jsonify

from tickstock.health import run_health_checks
from tickstock.version import __version__

blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
async def health() -> tuple[Response, int]:
    """Service health: healthy, degraded, unhealthy or draining (503), per-component latency."""
    status, components = await run_health_checks()
    body = {"status": status, "version": __version__, "components": components}
    return jsonify(body), 503 if status in ("unhealthy", "draining") else 200
