"""The health-check registry: extensions register a probe, ``/health`` runs them all.

A probe is an async callable answering ``{"status": "up" | "down" | "draining", ...}`` within its
own time bound. A critical component that is not up makes the service unhealthy; any other only
degrades it. The registry lives on the app, so every ``create_app()`` starts with none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from quart import Quart, current_app

__all__ = ["HealthCheck", "register_health_check", "run_health_checks"]

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]
EXTENSION_KEY: Final = "tickstock.health"


@dataclass(slots=True)
class _Registry:
    checks: dict[str, HealthCheck] = field(default_factory=dict)
    critical: set[str] = field(default_factory=set)


def _registry(app: Quart) -> _Registry:
    registry: _Registry | None = app.extensions.get(EXTENSION_KEY)
    if registry is None:
        registry = app.extensions[EXTENSION_KEY] = _Registry()
    return registry


def register_health_check(
    app: Quart, name: str, check: HealthCheck, *, critical: bool = False
) -> None:
    """Add a component probe to ``/health``; ``critical``: down means unhealthy, not degraded."""
    registry = _registry(app)
    registry.checks[name] = check
    if critical:
        registry.critical.add(name)
    else:
        registry.critical.discard(name)


async def run_health_checks(app: Quart | None = None) -> tuple[str, dict[str, Any]]:
    """The overall status (healthy, degraded, unhealthy, draining) and each component's probe."""
    registry = _registry(app or current_app)
    probes = dict(registry.checks)
    results = await asyncio.gather(*(probe() for probe in probes.values()))
    components = dict(zip(probes, results, strict=True))
    if any(result.get("status") == "draining" for result in components.values()):
        return "draining", components
    status = "healthy"
    for name, result in components.items():
        if result.get("status") == "up":
            continue
        if name in registry.critical:
            return "unhealthy", components
        status = "degraded"
    return status, components
