"""The database extension: connections are handed out in the order requests asked for them."""

from __future__ import annotations

import asyncio
from typing import Any

from tickstock.config import Settings
from tickstock.extensions.database import Database


async def test_a_waiting_request_is_not_overtaken_by_later_ones(database_url: str) -> None:
    # One connection, held while "a" and then "b" queue for it. A third request ("late") that
    # asks at the very moment it is released (a busy server has such a request in every loop
    # iteration) must go behind them: under load, overtaking again and again was a request
    # waiting hundreds of milliseconds.
    db = Database()
    db.settings = Settings(_env_file=None, database_url=database_url, db_pool_min=0, db_pool_max=1)
    await db.open()
    order: list[str] = []
    try:

        async def request(name: str) -> None:
            async with db.read() as conn:
                await conn.fetchval("SELECT 1")
                order.append(name)

        async def late() -> None:
            assert db.read_pool is not None
            while db.read_pool.get_idle_size() == 0:  # noqa: ASYNC110 - must poll every iteration
                await asyncio.sleep(0)
            await request("late")

        async with db.read() as conn:
            await conn.fetchval("SELECT 1")
            waiting: list[asyncio.Task[Any]] = []
            for name in ("a", "b"):
                waiting.append(asyncio.create_task(request(name)))
                await asyncio.sleep(0.01)
            waiting.append(asyncio.create_task(late()))
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(*waiting), 10)
    finally:
        await db.close()
    assert order == ["a", "b", "late"]
