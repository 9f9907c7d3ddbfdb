"""What the socket benchmarks (``fanout``, ``alerts``) share: lean Socket.IO clients over a raw
websocket, the worker processes that run them, and the server's CPU and memory."""

from __future__ import annotations

import asyncio
import queue
import resource
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

import aiohttp
import orjson


def socketio_ws_url(url: str) -> str:
    """The Socket.IO websocket endpoint of a served app's base URL."""
    ws_url = url.rstrip("/").replace("http://", "ws://").replace("https://", "wss://")
    return ws_url + "/socket.io/?EIO=4&transport=websocket"


async def answer_pings_until(ws: aiohttp.ClientWebSocketResponse, prefix: str) -> str:
    """The next frame starting with ``prefix``, answering pings; a refused connect raises."""
    while True:
        reply = await ws.receive_str(timeout=10)
        if reply.startswith(prefix):
            return reply
        if reply.startswith("44"):
            raise RuntimeError(f"refused: {reply[2:200]}")
        if reply == "2":
            await ws.send_str("3")


class LeanSocket:
    """One Socket.IO client over a raw websocket: open, connect with ``auth``, ``opened``
    (a subclass subscribes there), then ``listen`` until the socket closes or the task is
    cancelled. ``ready`` is set once connected, or on failure (``error`` says why)."""

    # permessage-deflate window bits to offer (0: not offered)
    compress = 0

    def __init__(self, index: int, auth: dict[str, Any] | None) -> None:
        self.index = index
        self.auth = auth
        self.deflate = False
        self.connected = False
        self.error: str | None = None

    async def run(
        self,
        session: aiohttp.ClientSession,
        ws_url: str,
        headers: dict[str, str],
        ready: asyncio.Event,
    ) -> None:
        try:
            async with session.ws_connect(
                ws_url, headers=headers, heartbeat=None, max_msg_size=0, compress=self.compress
            ) as ws:
                self.deflate = bool(ws.compress)
                opening = await ws.receive_str(timeout=10)
                if not opening.startswith("0"):
                    raise RuntimeError(f"unexpected open packet {opening[:40]!r}")
                await ws.send_str("40" + (orjson.dumps(self.auth).decode() if self.auth else ""))
                await answer_pings_until(ws, "40")
                await self.opened(ws)
                self.connected = True
                ready.set()
                await self.listen(ws)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"[:200]
            ready.set()

    async def opened(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Connected: what to do before the client counts as ready."""

    async def listen(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for text in text_frames(ws):
            self.received_text(text)

    def received_text(self, text: str) -> None:
        """One text frame other than a ping."""


async def text_frames(ws: aiohttp.ClientWebSocketResponse) -> AsyncIterator[str]:
    """The text frames of a socket until it closes; pings are answered, not yielded."""
    async for message in ws:
        if message.type != aiohttp.WSMsgType.TEXT:
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
            continue
        text: str = message.data
        if text == "2":
            await ws.send_str("3")
            continue
        yield text


async def run_sockets(
    sockets: Sequence[LeanSocket],
    ws_url: str,
    headers: dict[str, str],
    concurrency: int,
    connected: Callable[[], None],
    inbox: Any,
    idle: Callable[[], None] = lambda: None,
) -> None:
    """In a worker process: connect the sockets (``concurrency`` at a time), call ``connected``,
    keep them running until ``"stop"`` comes on ``inbox`` (``idle`` each second without a
    command), then close them."""
    tasks: list[asyncio.Task[None]] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        gate = asyncio.Semaphore(concurrency)

        async def start(socket: LeanSocket) -> None:
            async with gate:
                ready = asyncio.Event()
                tasks.append(asyncio.create_task(socket.run(session, ws_url, headers, ready)))
                await ready.wait()

        await asyncio.gather(*(start(s) for s in sockets))
        connected()
        loop = asyncio.get_running_loop()
        while True:
            try:
                command = await loop.run_in_executor(None, inbox.get, True, 1.0)
            except queue.Empty:
                idle()
                continue
            if command == "stop":
                break
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def run_worker(main: Coroutine[Any, Any, None]) -> None:
    """A worker process's event loop (uvloop when installed)."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main)


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def process_stats(pids: list[int], children: bool = False) -> tuple[float, int]:
    """Total CPU seconds (with their descendants' when ``children``) and RSS bytes of these
    processes (gone ones count for nothing)."""
    import psutil

    cpu = 0.0
    rss = 0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            times = proc.cpu_times()
            cpu += times.user + times.system
            rss += proc.memory_info().rss
            if children:
                for child in proc.children(recursive=True):
                    child_times = child.cpu_times()
                    cpu += child_times.user + child_times.system
        except psutil.NoSuchProcess:
            continue
    return cpu, rss


def progress_printer(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
