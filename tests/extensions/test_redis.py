"""Redis clients: plain URL or Sentinel, and the matching python-socketio manager URL."""

from __future__ import annotations

import pydantic
import pytest
import redis.asyncio as aioredis
from socketio.redis_manager import parse_redis_sentinel_url

from tickstock.config import Settings
from tickstock.extensions.redis import make_client, socketio_manager_url


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)


def test_sentinels_are_read_from_a_comma_separated_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKSTOCK_REDIS_SENTINELS", "10.0.0.1:26379, sentinel-b:26380,")
    monkeypatch.setenv("TICKSTOCK_REDIS_SENTINEL_MASTER", "prices")
    settings = Settings(_env_file=None)
    assert settings.redis_sentinels == ["10.0.0.1:26379", "sentinel-b:26380"]
    assert settings.redis_sentinel_master == "prices"


@pytest.mark.parametrize("address", ["sentinel", "sentinel:", ":26379", "host:port", "h:70000"])
def test_a_sentinel_address_without_a_valid_port_is_refused(address: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="host:port"):
        _settings(redis_sentinels=address)


async def test_without_sentinels_the_client_uses_the_url() -> None:
    client = make_client(_settings(redis_url="redis://127.0.0.1:6390/3"))
    try:
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6390, 3)
        assert socketio_manager_url(_settings(redis_url="redis://h:1/0"))[0] == "redis://h:1/0"
    finally:
        await client.aclose()


async def test_with_sentinels_the_client_asks_them_for_the_master_with_the_urls_credentials() -> (
    None
):
    settings = _settings(
        redis_url="rediss://app:p%40ss@ignored-host:6379/2",
        redis_sentinels="10.0.0.1:26379,[::1]:26380",
        redis_sentinel_master="prices",
        redis_timeout=1.5,
    )
    client = make_client(settings, blocking=True)
    try:
        pool = client.connection_pool
        manager = pool.sentinel_manager
        sentinels = [
            (
                s.connection_pool.connection_kwargs["host"],
                s.connection_pool.connection_kwargs["port"],
            )
            for s in manager.sentinels
        ]
        assert sentinels == [("10.0.0.1", 26379), ("::1", 26380)]
        assert manager.sentinels[0].connection_pool.connection_kwargs["socket_timeout"] == 1.5
        assert pool.service_name == "prices"
        kwargs = pool.connection_kwargs
        assert (kwargs["db"], kwargs["username"], kwargs["password"]) == (2, "app", "p@ss")
        assert kwargs["socket_timeout"] is None  # a blocking client
        assert "SSL" in pool.connection_class.__name__
    finally:
        await client.aclose()
    assert isinstance(client, aioredis.Redis)


def test_socketio_manager_gets_a_sentinel_url_and_credentials_as_options() -> None:
    settings = _settings(
        redis_url="redis://:s3cr%2Ft@ignored:6379/4",
        redis_sentinels="s1:26379,s2:26379",
    )
    url, options = socketio_manager_url(settings)
    sentinels, service, kwargs = parse_redis_sentinel_url(url)
    assert sentinels == [("s1", 26379), ("s2", 26379)]
    assert (service, kwargs) == ("mymaster", {"db": 4})
    assert options["password"] == "s3cr/t"
