"""The one error path classifies a failure by its cause, each with a real trigger.

A backing service that cannot be reached is a 503 naming that service; a path the file system
refuses under /static/ is a 404; anything else unexpected is a 500 without details.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from quart import Quart

from tests.support.env import free_port
from tickstock.app import create_app
from tickstock.extensions.redis import get_redis


async def _database_refused() -> None:
    # asyncpg raises a bare ConnectionRefusedError (an OSError) when PostgreSQL is gone.
    await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing", timeout=2)


async def _database_gone() -> None:
    raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")


async def _redis_refused() -> None:
    client = aioredis.Redis(port=free_port(), socket_connect_timeout=1)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _redis_timeout() -> None:
    # A real Redis that does not answer in time: asyncio.timeout ends a blocking read.
    async with asyncio.timeout(0.05):
        await get_redis().blpop(["tickstock:test:never"], timeout=1)


async def _unknown_timeout() -> None:
    async with asyncio.timeout(0.01):
        await asyncio.sleep(1)


async def _missing_file() -> None:
    with open("/nonexistent/tickstock/file"):  # noqa: ASYNC230 - the error is the point
        pass


async def _bug() -> None:
    raise KeyError("a bug")


TRIGGERS: dict[str, Callable[[], Awaitable[None]]] = {
    "database-refused": _database_refused,
    "database-gone": _database_gone,
    "redis-refused": _redis_refused,
    "redis-timeout": _redis_timeout,
    "unknown-timeout": _unknown_timeout,
    "missing-file": _missing_file,
    "bug": _bug,
}


@pytest.fixture(name="error_app")
async def _error_app(settings_overrides: dict[str, Any]) -> AsyncIterator[Quart]:
    app = create_app(settings_overrides)
    for name, trigger in TRIGGERS.items():

        async def view(trigger: Callable[[], Awaitable[None]] = trigger) -> str:
            await trigger()
            return "unreachable"

        app.add_url_rule(f"/_test/{name}", f"test_{name}", view)
    async with app.test_app():
        yield app


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        pytest.param("/_test/database-refused", 503, "database_unavailable", id="pg-refused"),
        pytest.param("/_test/database-gone", 503, "database_unavailable", id="pg-error"),
        pytest.param(
            "/_test/redis-refused",
            503,
            "redis_unavailable",
            id="redis-refused",
            marks=pytest.mark.fault,  # waits out a connect retry
        ),
        pytest.param("/_test/redis-timeout", 503, "redis_unavailable", id="redis-timeout"),
        pytest.param("/_test/unknown-timeout", 503, "service_unavailable", id="other-timeout"),
        pytest.param("/_test/missing-file", 500, "internal_error", id="file-off-static"),
        pytest.param("/_test/bug", 500, "internal_error", id="bug"),
        pytest.param("/static/" + "A" * 256, 404, "not_found", id="static-name-too-long"),
        pytest.param("/static/no-such-file.js", 404, "not_found", id="static-missing"),
    ],
)
async def test_error_is_classified_by_cause(
    error_app: Quart, path: str, status: int, code: str
) -> None:
    response = await error_app.test_client().get(path)
    body = await response.get_json()
    assert (response.status_code, body["code"]) == (status, code), body
    assert body["status"] == "error" and body["message"]
    if status == 503:
        assert response.headers["Retry-After"] == "2"
    if status == 500:
        assert body["message"] == "internal server error"  # no details leak


async def test_unavailable_names_the_service(error_app: Quart) -> None:
    response = await error_app.test_client().get("/_test/redis-timeout")
    assert (await response.get_json())["message"].startswith("redis is unavailable")
