"""GET /health with the stores up and down."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from tests.support.env import free_port
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


async def test_public_health_shows_no_internals(client: Any, admin_headers: dict[str, str]) -> None:
    """Pool sizes, consumer lag and event ages are for operators (``/api/health``), not anyone."""
    body = await (await client.get("/health")).get_json()
    assert set(body) == {"status", "version", "components"}
    assert {"database", "redis", "realtime"} <= set(body["components"])
    for component in body["components"].values():
        assert set(component) <= {"status", "latency_ms"}, component
    detailed = (await (await client.get("/api/health", headers=admin_headers)).get_json())["data"]
    assert detailed["components"]["database"]["pool_max"] >= 1
    assert "lag_ms" in detailed["components"]["realtime"]


@pytest.mark.fault
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


@pytest.mark.fault
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


@pytest.mark.fault
async def test_read_replica_down_degrades(settings_overrides: dict[str, Any]) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/replica"
    app = create_app({**settings_overrides, "database_read_url": dead})
    async with app.test_app():
        response = await app.test_client().get("/health")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "degraded"
    assert body["components"]["database"]["status"] == "up"
    assert body["components"]["database_replica"]["status"] == "down"


async def test_proxy_hops_trust_forwarded_address(
    serve_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import aiohttp

    caplog.set_level(logging.INFO, logger="tickstock.request")
    served = await serve_app(proxy_hops=1)
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Request-ID": "proxied-request-1"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{served.url}/login", headers=headers) as response,
    ):
        assert response.status == 200
        assert response.headers["X-Request-ID"] == "proxied-request-1"
    # The request is attributed to the client the proxy names, not to the proxy.
    remotes = [
        r.remote for r in caplog.records if getattr(r, "request_id", "") == "proxied-request-1"
    ]
    assert remotes == ["203.0.113.7"]
