"""Fixtures for realtime tests against a real served app, Redis and Socket.IO clients."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from tests.realtime.helpers import Publisher, Recorder
from tickstock.auth import create_session, ensure_user


@pytest.fixture(name="publisher")
async def _publisher(redis_url: str) -> AsyncIterator[Publisher]:
    publisher = Publisher(redis_url)
    yield publisher
    await publisher.close()


@pytest.fixture(name="socket_auth", scope="session")
async def _socket_auth(database_url: str) -> dict[str, Any]:
    """Socket.IO credentials: an API token of a dedicated test user."""
    conn = await asyncpg.connect(database_url)
    try:
        user = await ensure_user(
            conn, f"realtime-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
        )
        _session_id, token, _expires = await create_session(conn, user.id, "token", lifetime=None)
    finally:
        await conn.close()
    assert token is not None
    return {"token": token}


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
