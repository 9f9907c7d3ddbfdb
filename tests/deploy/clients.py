"""The official Socket.IO JavaScript client as a long-lived peer of the deploy suite."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.env import ROOT

HARNESS = ROOT / "tests" / "support" / "node" / "sio_resume.cjs"
WEB = ROOT / "tickstock" / "web"


@dataclass
class JsClient:
    """``sio_resume.cjs``: subscribes, reconnects by itself and resumes from its offsets."""

    name: str
    transports: str
    process: asyncio.subprocess.Process
    lines: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, name: str, url: str, token: str, symbols: list[str], transports: str, ca: Path
    ) -> JsClient:
        process = await asyncio.create_subprocess_exec(
            "node",
            str(HARNESS),
            url,
            token,
            ",".join(symbols),
            transports,
            env={**os.environ, "TICKSTOCK_WEB": str(WEB), "NODE_EXTRA_CA_CERTS": str(ca)},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        client = cls(name, transports, process)
        client.reader = asyncio.create_task(client._read())
        return client

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                line = {"ev": "output", "text": raw.decode(errors="replace")}
            self.lines.append(line)
            self.changed.set()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["ev"] == kind]

    async def wait(self, check: Callable[[], bool], within: float, what: str) -> None:
        try:
            async with asyncio.timeout(within):
                while not check():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            pytest.fail(f"{self.name}: not within {within}s: {what}\n{self.lines[-8:]}")

    async def wait_acks(self, count: int, within: float = 20) -> dict[str, Any]:
        await self.wait(lambda: len(self.of("ack")) >= count, within, f"{count} subscription(s)")
        return self.of("ack")[count - 1]

    async def wait_events(self, count: int, within: float = 20) -> None:
        await self.wait(lambda: len(self.of("event")) >= count, within, f"{count} event(s)")

    def baselines(self) -> dict[str, str]:
        offsets: dict[str, str] = self.of("ack")[0]["offsets"]
        return offsets

    def offsets(self) -> dict[str, list[str]]:
        """The offsets received per symbol, in arrival order."""
        received: dict[str, list[str]] = {}
        for line in self.of("event"):
            received.setdefault(line["symbol"], []).append(line["offset"])
        return received

    def reconnects(self, after_ms: int) -> list[float]:
        """Seconds from each disconnect after ``after_ms`` to the next subscription ack."""
        times = []
        for gone in self.of("disconnect"):
            if gone["t"] < after_ms:
                continue
            back = next((a for a in self.of("ack") if a["t"] > gone["t"]), None)
            if back is not None:
                times.append((back["t"] - gone["t"]) / 1000)
        return times

    async def close(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                assert self.process.stdin is not None
                self.process.stdin.write(b"quit\n")
                await self.process.stdin.drain()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self.reader is not None:
            await self.reader
