"""Graceful shutdown: sockets are handed to other nodes before the node stops."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
import socketio

from tests.support.env import free_port, session_env
from tickstock.cli.serve import _drain_workers

pytestmark = [pytest.mark.fault, pytest.mark.ops]


async def _health(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as response:
        return response.status, await response.json()


async def _wait_healthy(url: str, serve: subprocess.Popen[bytes], log_path: Path) -> None:
    async with asyncio.timeout(30):
        while True:
            assert serve.poll() is None, f"serve exited; see {log_path}"
            try:
                if (await _health(url))[1]["status"] == "healthy":
                    return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


async def test_killed_serve_leaves_no_server_behind(
    tmp_path: Path, settings_overrides: dict[str, Any]
) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        serve = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "tickstock", "serve", "--bind", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            env=session_env(settings_overrides, secret_key=settings_overrides["secret_key"]),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        await _wait_healthy(f"http://127.0.0.1:{port}", serve, log_path)
        descendants = psutil.Process(serve.pid).children(recursive=True)
        assert descendants
        serve.kill()
        serve.wait()
        _gone, alive = psutil.wait_procs(descendants, timeout=15)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


async def test_sigterm_drains_sockets_then_stops_quickly(
    tmp_path: Path, settings_overrides: dict[str, Any], socket_auth: dict[str, Any]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = session_env(settings_overrides, secret_key=settings_overrides["secret_key"])
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        serve = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "tickstock", "serve", "--bind", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = socketio.AsyncClient(reconnection=True, reconnection_delay=0.2)
    reasons: list[Any] = []
    dropped = asyncio.Event()

    @client.on("disconnect")
    async def _gone(reason: Any = None) -> None:
        reasons.append(reason)
        dropped.set()

    try:
        await _wait_healthy(url, serve, log_path)
        await client.connect(url, auth=socket_auth, transports=["websocket"], wait_timeout=5)
        assert (await client.call("subscribe_patterns", {"symbol": "AAPL"}))["status"] == "success"

        hypercorn = psutil.Process(serve.pid).children()[0]
        _drain_workers(hypercorn.pid)
        # The socket is let go at once, as a lost transport: the client reconnects by itself.
        await asyncio.wait_for(dropped.wait(), 3)
        assert reasons[0] == client.reason.TRANSPORT_ERROR  # not SERVER_DISCONNECT: it retries
        status, body = await _health(url)
        assert (status, body["status"]) == (503, "draining")
        # New sockets are refused here with a 503 on the engine.io handshake, which clients
        # retry by themselves (and nginx passes to another node).
        async with aiohttp.ClientSession() as http:
            handshake = f"{url}/socket.io/?EIO=4&transport=polling"
            async with http.get(handshake) as response:
                assert response.status == 503
                assert (await response.json())["code"] == "draining"
        # New sockets are refused here (a load balancer sends them to another node).
        other = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await other.connect(url, auth=socket_auth, transports=["websocket"], wait_timeout=3)
        await other.shutdown()
        if other.eio.http is not None:  # a refused handshake leaves the client's session open
            await other.eio.http.close()

        started = time.monotonic()
        serve.send_signal(signal.SIGTERM)
        while serve.poll() is None and time.monotonic() - started < 20:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        assert serve.returncode == 0, log_path.read_text()[-2000:]
        # No socket holds the node for hypercorn's 10 s graceful period.
        assert elapsed < 8, f"stopped after {elapsed:.1f}s"
    finally:
        await client.shutdown()
        if client.eio.http is not None:  # its retries against the draining node were refused
            await client.eio.http.close()
        if serve.poll() is None:
            serve.kill()
            serve.wait()
