"""One command to a live dashboard: `tickstock serve` with nothing configured (SPEC §9)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil
import pytest

from tests.support.env import free_port, tickstock_env
from tests.support.quickstart import QuickStart
from tests.support.realtime import Recorder

pytestmark = pytest.mark.slow


def _processes_under(folder: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if str(folder) in text and proc.pid != os.getpid():
            found.append(proc)
    return found


async def test_serve_brings_up_the_local_stack_and_live_events(tmp_path: Path) -> None:
    serve = QuickStart(tmp_path, demo_producer_rate="20")
    server = serve.start()
    url, log_path = serve.url, serve.log_path
    recorder = Recorder()
    try:
        started = time.monotonic()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            body = {}
            while time.monotonic() - started < 60:
                assert server.poll() is None, log_path.read_text()[-3000:]
                try:
                    async with http.get(f"{url}/health") as response:
                        body = await response.json()
                        if response.status == 200 and body["status"] == "healthy":
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.5)
            assert body.get("status") == "healthy", log_path.read_text()[-3000:]

            user, password = (tmp_path / ".tickstock" / "demo-login.txt").read_text().split()
            # Printed once on start, in the ready line that follows the first healthy answer.
            async with asyncio.timeout(10):
                while password not in log_path.read_text():  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            async with http.post(
                f"{url}/api/auth/login", json={"username": user, "password": password}
            ) as response:
                assert response.status == 200, await response.text()
            cookies = "; ".join(f"{c.key}={c.value}" for c in http.cookie_jar)

        await recorder.connect(url, headers={"Cookie": cookies})
        ack = await recorder.call("subscribe_patterns", {"symbol": "*"})
        assert ack["status"] == "success"
        events = await recorder.wait_for("pattern_detected", 3, within=30)
        assert all(e["data"]["symbol"] and e["data"]["offset"] for e in events)
        await recorder.close()
    finally:
        await recorder.close()
        returncode = serve.stop()
    assert returncode == 0, log_path.read_text()[-3000:]
    await asyncio.sleep(0.5)
    leftovers = _processes_under(tmp_path)
    assert leftovers == [], [p.info["cmdline"] for p in leftovers]
    assert not [c for c in psutil.Process().children() if c.status() == psutil.STATUS_ZOMBIE]


def test_configured_but_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    dead = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "tickstock", "serve", "--bind", f"127.0.0.1:{free_port()}"],
        cwd=tmp_path,
        env=tickstock_env(
            database_url=f"postgresql://postgres@127.0.0.1:{dead}/x",
            redis_url="redis://127.0.0.1:6379/0",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "cannot connect to the database" in result.stderr
    assert not (tmp_path / ".tickstock").exists()  # never a silent fallback to the local stack
