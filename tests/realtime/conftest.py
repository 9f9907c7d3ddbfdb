"""Fixtures for realtime tests against a real served app, Redis and Socket.IO clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.support.auth import new_api_token
from tests.support.realtime import Publisher, Recorder


@pytest.fixture(name="publisher")
async def _publisher(redis_url: str) -> AsyncIterator[Publisher]:
    publisher = Publisher(redis_url)
    yield publisher
    await publisher.close()


@pytest.fixture(name="socket_auth", scope="session")
async def _socket_auth(database_url: str) -> dict[str, Any]:
    """Socket.IO credentials: an API token of a dedicated test user."""
    return {"token": await new_api_token(database_url, "realtime")}


@pytest.fixture(name="connect")
async def _connect(
    socket_auth: dict[str, Any] | None,
) -> AsyncIterator[Callable[[str], Awaitable[Recorder]]]:
    """Factory: ``client = await connect(served.url)``; all clients are closed afterwards."""
    recorders: list[Recorder] = []

    async def factory(url: str, auth: Any = None) -> Recorder:
        recorder = Recorder()
        recorders.append(recorder)
        return await recorder.connect(url, auth=auth if auth is not None else socket_auth)

    yield factory
    for recorder in recorders:
        await recorder.close()
