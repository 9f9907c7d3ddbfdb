"""The factory, the error path and configuration."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from quart import Quart

from tickstock.app import create_app
from tickstock.config import ConfigError, load_settings
from tickstock.extensions.database import get_db


async def test_two_apps_have_separate_pools(settings_overrides: dict[str, Any]) -> None:
    first, second = create_app(settings_overrides), create_app(settings_overrides)
    async with first.test_app(), second.test_app():
        async with first.app_context():
            pool_one = get_db().pool
        async with second.app_context():
            pool_two = get_db().pool
        assert pool_one is not None and pool_two is not None
        assert pool_one is not pool_two
        assert await pool_one.fetchval("SELECT 1") == 1
    # Closing one app's resources leaves nothing shared behind.
    assert first.extensions["tickstock.db"].pool is None


async def test_unknown_route_is_json_404(client: Any) -> None:
    response = await client.get("/no/such/thing")
    assert response.status_code == 404
    body = await response.get_json()
    assert body["status"] == "error"
    assert body["code"] == "not_found"


async def test_wrong_method_is_json_405(client: Any) -> None:
    response = await client.delete("/health")
    assert response.status_code == 405
    assert (await response.get_json())["code"] == "method_not_allowed"


async def test_unexpected_error_is_json_500_without_traceback(
    settings_overrides: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings_overrides)

    @app.get("/boom")
    async def boom() -> str:
        raise RuntimeError("secret internal detail")

    async with app.test_app():
        response = await app.test_client().get("/boom")
    assert response.status_code == 500
    text = await response.get_data(as_text=True)
    body = await response.get_json()
    assert body == {"status": "error", "message": "internal server error", "code": "internal_error"}
    assert "secret internal detail" not in text and "Traceback" not in text
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)


def test_production_refuses_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TICKSTOCK_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="TICKSTOCK_SECRET_KEY"):
        load_settings(env="production")
    with pytest.raises(ConfigError):
        load_settings(env="production", secret_key="short")
    assert load_settings(env="production", secret_key="k" * 40).is_production


def test_production_refuses_cookies_without_secure() -> None:
    """The README promises Secure cookies in production: TICKSTOCK_COOKIE_SECURE=false is refused."""
    with pytest.raises(ConfigError, match="TICKSTOCK_COOKIE_SECURE"):
        load_settings(env="production", secret_key="k" * 40, cookie_secure=False)
    assert load_settings(env="production", secret_key="k" * 40, cookie_secure=True).secure_cookies
    assert not load_settings(env="development", cookie_secure=False).secure_cookies


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKSTOCK_INGEST_CHANNELS", "a.b, c:d")
    monkeypatch.setenv("TICKSTOCK_DB_POOL_MAX", "7")
    settings = load_settings()
    assert settings.ingest_channels == ["a.b", "c:d"]
    assert settings.db_pool_max == 7


async def test_served_app_answers_health(served: Any) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{served.url}/health") as response:
        assert response.status == 200
        body = await response.json()
    assert body["status"] == "healthy"
    assert body["components"]["database"]["status"] == "up"
    assert body["components"]["redis"]["status"] == "up"


async def test_app_factory_builds_fresh_apps(app: Quart) -> None:
    assert create_app(app.config["SETTINGS"].model_dump()) is not app
