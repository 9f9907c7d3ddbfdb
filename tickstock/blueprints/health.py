"""Health: a public summary for load balancers and a detailed view for operators."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Blueprint, Quart, Response, current_app, jsonify

from tickstock import __version__

blueprint = Blueprint("health", __name__)

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]
CHECKS_KEY = "tickstock.health_checks"

# A component that is down makes the whole service unhealthy (critical) or only degraded.
CRITICAL = {"database"}


def register_health_check(app: Quart, name: str, check: HealthCheck) -> None:
    """Add a component probe to ``/health`` (each probe bounds its own time)."""
    app.extensions.setdefault(CHECKS_KEY, {})[name] = check


async def collect_health() -> tuple[str, dict[str, Any]]:
    checks: dict[str, HealthCheck] = dict(current_app.extensions.get(CHECKS_KEY, {}))
    db = current_app.extensions["tickstock.db"]
    redis_ext = current_app.extensions["tickstock.redis"]
    probes: dict[str, HealthCheck] = {"database": db.check, "redis": redis_ext.check, **checks}
    results = await asyncio.gather(*(probe() for probe in probes.values()))
    components = dict(zip(probes, results, strict=True))
    status = "healthy"
    if any(result.get("status") == "draining" for result in components.values()):
        return "draining", components
    for name, result in components.items():
        if result.get("status") == "up":
            continue
        if name in CRITICAL:
            status = "unhealthy"
            break
        status = "degraded"
    return status, components


@blueprint.get("/health")
async def health() -> tuple[Response, int]:
    """Service health: healthy, degraded, unhealthy or draining (503), per-component latency."""
    status, components = await collect_health()
    body = {"status": status, "version": __version__, "components": components}
    return jsonify(body), 503 if status in ("unhealthy", "draining") else 200
