"""What SIGTERM does to a process run as docs/deploy/hypercorn.toml says, without the drain
(docs/DEPLOYMENT.md section 9): to the hypercorn master alone, websockets stay open until
``graceful_timeout`` ends; to every process of the group (systemd's default KillMode), the worker
closes them at once and exits. Clients see a lost transport either way, and reconnect."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.deploy.conftest import HYPERCORN_TOML
from tests.support.auth import new_api_token
from tests.support.env import ROOT, free_port
from tests.support.processes import get_json, node_env, tail, wait_until
from tests.support.realtime import connect_socket

pytestmark = [pytest.mark.deploy]

GRACEFUL = 6  # seconds, instead of the file's 10, to keep the test short


@pytest.mark.parametrize("target", ["master", "group"])
async def test_sigterm_without_the_drain(
    tmp_path: Path, database_url: str, redis_url: str, key_prefix: str, target: str
) -> None:
    port = free_port()
    log = tmp_path / "hypercorn.log"
    env = node_env(database_url, redis_url, f"{key_prefix}:sigterm-{target}")
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "hypercorn", "--config", str(HYPERCORN_TOML)),
            *("--bind", f"127.0.0.1:{port}", "--graceful-timeout", str(GRACEFUL)),
            "tickstock.asgi:app",
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    token = await new_api_token(database_url, "sigterm")
    url = f"http://127.0.0.1:{port}"
    try:

        async def up() -> bool:
            assert process.returncode is None, tail(log)
            try:
                async with aiohttp.ClientSession() as http:
                    _, body = await get_json(http, url + "/health")
            except aiohttp.ClientError:
                return False
            return bool(body["status"] == "healthy")

        await wait_until(up, 30, "hypercorn serving")
        sio, gone = await connect_socket(url, auth={"token": token})
        reasons: list[object] = []
        dropped: list[float] = []

        def on_disconnect(reason: object = None) -> None:
            reasons.append(reason)
            dropped.append(time.monotonic() - started)
            gone.set()

        sio.on("disconnect", on_disconnect)
        started = time.monotonic()
        if target == "master":
            os.kill(process.pid, signal.SIGTERM)
        else:
            os.killpg(process.pid, signal.SIGTERM)
        await asyncio.wait_for(process.wait(), GRACEFUL + 10)
        exited = time.monotonic() - started
        await asyncio.wait_for(gone.wait(), 2)
        assert reasons == [sio.reason.TRANSPORT_ERROR]  # the client reconnects by itself
        await sio.shutdown()
        assert process.returncode == 0, tail(log)
        if target == "master":
            # Only at the end of graceful_timeout is the websocket closed and the process gone.
            assert dropped[0] >= GRACEFUL - 0.5 and exited >= GRACEFUL - 0.5, (dropped, exited)
        else:
            assert dropped[0] < GRACEFUL / 2 and exited < GRACEFUL / 2, (dropped, exited)
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
