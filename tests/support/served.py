"""A real hypercorn server in the test process, on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from quart import Quart

from tests.support.env import free_port
from tickstock.app import create_app
from tickstock.realtime.server import get_realtime


@dataclass
class ServedApp:
    """A real hypercorn server in this process, on a free loopback port."""

    app: Quart
    url: str
    port: int
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 15)
            self._task = None


async def start_served_app(overrides: dict[str, Any], port: int | None = None) -> ServedApp:
    app = create_app(overrides)
    port = port or free_port()
    config = HypercornConfig()
    config.bind = [f"127.0.0.1:{port}"]
    config.graceful_timeout = 2
    config.accesslog = None
    config.include_server_header = False  # as hypercorn.toml
    served = ServedApp(app=app, url=f"http://127.0.0.1:{port}", port=port)
    asgi = get_realtime(app).asgi_app()
    served._task = asyncio.create_task(
        serve(asgi, config, shutdown_trigger=served._stop.wait)  # type: ignore[arg-type]
    )
    for _ in range(200):
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if served._task.done():
                served._task.result()
            await asyncio.sleep(0.025)
            continue
        writer.close()
        await writer.wait_closed()
        break
    # Serving hooks run before the socket is bound, so the app is ready here.
    return served
