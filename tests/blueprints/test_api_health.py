"""GET /api/health (SPEC §5): the detailed view, for an admin or the metrics token."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.support.auth import MakeToken, MakeUser
from tests.support.realtime import connect_socket, unique_symbol

METRICS_TOKEN = "detailed-health-token-0123456789"


async def test_detailed_health_for_operators(
    serve_app: Any,
    auth_headers: dict[str, str],
    admin_headers: dict[str, str],
    make_user: MakeUser,
    make_token: MakeToken,
) -> None:
    served = await serve_app(metrics_token=METRICS_TOKEN)
    symbol = unique_symbol()
    token = await make_token(await make_user())
    sio, _ = await connect_socket(served.url, auth={"token": token})
    try:
        await sio.call("subscribe_patterns", {"symbol": symbol}, timeout=5)
        async with aiohttp.ClientSession() as http:
            url = served.url + "/api/health"
            async with http.get(url) as response:
                assert response.status == 401
            async with http.get(url, headers=auth_headers) as response:
                assert response.status == 403
            async with http.get(url, headers=admin_headers) as response:
                assert response.status == 200
                by_admin = (await response.json())["data"]
            scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}
            async with http.get(url, headers=scraper) as response:
                assert response.status == 200
                by_token = (await response.json())["data"]
    finally:
        await sio.disconnect()
    for data in (by_admin, by_token):
        assert data["status"] == "healthy"
        assert data["components"]["database"]["status"] == "up"
        pool = data["database"]["pool"]
        assert pool["size"] >= 1 and pool["max"] >= pool["size"] >= pool["idle"] >= 0
        realtime = data["realtime"]
        assert realtime["node_id"]
        assert realtime["sockets"] == 1
        assert realtime["rooms"] >= 1 and realtime["subscriptions"]["patterns"] >= 1
        assert realtime["consumer_lag_ms"] >= 0
        assert realtime["ingest"]["connected"] is True
        assert realtime["fanout"]["connected"] is True


async def test_detailed_health_is_not_open_without_a_token_configured(
    client: Any, auth_headers: dict[str, str]
) -> None:
    response = await client.get("/api/health", headers={"Authorization": "Bearer "})
    assert response.status_code == 401
    response = await client.get("/api/health", headers=auth_headers)
    assert response.status_code == 403
