"""GET /health with the stores up and down."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import free_port
from tickstock.app import create_app


async def test_health_reports_components(client: Any) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "healthy"
    assert body["version"]
    for name in ("database", "redis"):
        assert body["components"][name]["status"] == "up"
        assert body["components"][name]["latency_ms"] >= 0


async def test_health_is_unhealthy_fast_when_database_unreachable(
    settings_overrides: dict[str, Any],
) -> None:
    # A port with nothing listening: the probe must fail fast, never hang.
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    app = create_app({**settings_overrides, "database_url": dead})
    async with app.test_app():
        started = time.monotonic()
        response = await app.test_client().get("/health")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    body = await response.get_json()
    assert body["status"] == "unhealthy"
    assert body["components"]["database"]["status"] == "down"
    assert elapsed < 2


async def test_health_is_degraded_when_redis_unreachable(
    settings_overrides: dict[str, Any],
) -> None:
    app = create_app({**settings_overrides, "redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    async with app.test_app():
        response = await app.test_client().get("/health")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "degraded"
    assert body["components"]["redis"]["status"] == "down"
