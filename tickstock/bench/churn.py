"""``tickstock bench churn``: does memory come back after sockets come and go?

Serves the app (from the ``TICKSTOCK_*`` settings) in this process under hypercorn, then, for each
cycle, connects N authenticated websocket clients from a child process, subscribes each to K
symbols and ``*``, closes them all, and reports this process's RSS connected and after closing.
The clients run in a child process so that only the server's memory is measured.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import psutil

_CLIENTS = """
import asyncio, sys, aiohttp, orjson
url, token, count, symbols = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
async def one(session, index):
    ws = await session.ws_connect(url, heartbeat=None)
    await ws.receive_str()
    await ws.send_str("40" + orjson.dumps({"token": token}).decode())
    await ws.receive_str()
    names = ["*"] + [f"CH{(index * 7 + k) % 3000:04d}" for k in range(symbols)]
    await ws.send_str("421" + orjson.dumps(["subscribe_patterns", {"symbols": names}]).decode())
    while not (await ws.receive_str()).startswith("431"):
        pass
    return ws
async def main():
    gate = asyncio.Semaphore(50)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def gated(index):
            async with gate:
                return await one(session, index)
        sockets = await asyncio.gather(*(gated(i) for i in range(count)))
        async def drain(ws):
            async for message in ws:
                if message.data == "2":
                    await ws.send_str("3")
        readers = [asyncio.create_task(drain(ws)) for ws in sockets]
        print("up", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for ws in sockets:
            await ws.close()
        print("closed", flush=True)
asyncio.run(main())
"""


@dataclass
class ChurnConfig:
    user: str
    password: str
    sockets: int = 500
    symbols: int = 200
    cycles: int = 10
    port: int = 8809


async def run_churn(config: ChurnConfig, say: Callable[[str], None]) -> list[tuple[float, float]]:
    """(connected, closed) RSS in MB per cycle."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from tickstock.app import create_app
    from tickstock.gc_tuning import tune_gc
    from tickstock.realtime.server import get_realtime

    # A channel of its own: no other producer's events reach these sockets while they churn.
    # One account on one address opens every socket: the caps per user and address make room.
    overrides = {
        "demo_producer": False,
        "ingest_channels": ["tickstock.bench.churn"],
        "max_sockets_per_user": config.sockets + 10,
        "max_sockets_per_address": config.sockets + 10,
    }
    app: Any = get_realtime(create_app(overrides)).asgi_app()
    tune_gc()  # as the served app (tickstock/asgi.py) does
    hypercorn = Config()
    hypercorn.bind = [f"127.0.0.1:{config.port}"]
    hypercorn.accesslog = None
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, hypercorn, shutdown_trigger=stop.wait))
    base = f"http://127.0.0.1:{config.port}"
    try:
        for _ in range(200):  # serving hooks run first, then the socket is bound
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", config.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            break
        token = await _token(base, config)
        process = psutil.Process()
        say(f"start RSS {process.memory_info().rss / 1e6:.1f} MB")
        results: list[tuple[float, float]] = []
        for cycle in range(1, config.cycles + 1):
            clients = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _CLIENTS,
                f"ws://127.0.0.1:{config.port}/socket.io/?EIO=4&transport=websocket",
                token,
                str(config.sockets),
                str(config.symbols),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert clients.stdin is not None and clients.stdout is not None
            await clients.stdout.readline()
            await asyncio.sleep(1)
            connected = process.memory_info().rss / 1e6
            clients.stdin.write(b"\n")
            await clients.stdin.drain()
            await clients.stdout.readline()
            await clients.wait()
            await asyncio.sleep(3)
            closed = process.memory_info().rss / 1e6
            results.append((connected, closed))
            say(f"cycle {cycle}: connected {connected:.1f} MB  closed {closed:.1f} MB")
        first = results[0][0]
        say(f"after {config.cycles} cycles: {(results[-1][1] / first - 1) * 100:+.1f} % of cycle 1")
        if len(results) >= 3:
            # SPEC §10: flat from the third cycle on (the allocator's high-water mark stays; a
            # leak would keep growing).
            third = results[2][0]
            highest = max(rss for cycle in results[2:] for rss in cycle)
            say(
                f"cycles 3-{len(results)}: highest RSS {highest:.1f} MB,"
                f" {(highest / third - 1) * 100:+.1f} % of cycle 3 connected"
            )
        return results
    finally:
        stop.set()
        await server


async def _token(base: str, config: ChurnConfig) -> str:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        login = {"username": config.user, "password": config.password}
        async with http.post(f"{base}/api/auth/login", json=login) as response:
            if response.status != 200:
                raise RuntimeError(f"login failed: HTTP {response.status}")
        async with http.post(
            f"{base}/api/auth/tokens", json={"name": "bench-churn"}, headers={"Origin": base}
        ) as response:
            body: Any = await response.json()
            return str(body["data"]["token"])
