"""Engine.io long-polling POSTs face the same body limits as every other route (raw HTTP).

A declared oversize body is a 413 at once; a body that stalls is a 408 after the body timeout;
either way the server closes the connection instead of holding it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tests.support.served import ServedApp

BODY_TIMEOUT = 1


@pytest.fixture(name="limited")
async def _limited(serve_app: Any) -> ServedApp:
    served: ServedApp = await serve_app(body_timeout_seconds=BODY_TIMEOUT)
    return served


async def _polling_sid(served: ServedApp) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{served.url}/socket.io/?EIO=4&transport=polling") as response,
    ):
        text = await response.text()
    assert text.startswith("0{"), text
    sid: str = json.loads(text[1:])["sid"]
    return sid


async def _raw_post(served: ServedApp, sid: str, headers: str, body: bytes) -> tuple[bytes, float]:
    """Send a POST by hand; the status line and how long until the server closed the socket."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    writer.write(
        (
            f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{served.port}\r\nContent-Type: text/plain;charset=UTF-8\r\n"
            f"{headers}\r\n"
        ).encode()
        + body
    )
    await writer.drain()
    try:
        async with asyncio.timeout(BODY_TIMEOUT + 10):
            response = await reader.read()  # until the server closes the connection
    finally:
        writer.close()
    return response.split(b"\r\n", 1)[0], loop.time() - started


async def test_declared_oversize_polling_body_is_refused_at_once(limited: ServedApp) -> None:
    sid = await _polling_sid(limited)
    status, elapsed = await _raw_post(limited, sid, "Content-Length: 5000001\r\n", b"")
    assert status.startswith(b"HTTP/1.1 413"), status
    assert elapsed < BODY_TIMEOUT


async def test_oversize_polling_body_without_a_length_is_refused(limited: ServedApp) -> None:
    sid = await _polling_sid(limited)
    limit = limited.app.config["SETTINGS"].max_request_bytes
    chunk = b"x" * (limit + 1)
    body = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n"
    status, _ = await _raw_post(limited, sid, "Transfer-Encoding: chunked\r\n", body)
    assert status.startswith(b"HTTP/1.1 413"), status


async def test_stalled_polling_body_times_out(limited: ServedApp) -> None:
    sid = await _polling_sid(limited)
    status, elapsed = await _raw_post(limited, sid, "Content-Length: 1000\r\n", b"4")
    assert status.startswith(b"HTTP/1.1 408"), status
    assert elapsed < BODY_TIMEOUT + 5


async def test_polling_still_carries_messages(limited: ServedApp, socket_auth: Any) -> None:
    sid = await _polling_sid(limited)
    body = ("40" + json.dumps(socket_auth)).encode()
    async with aiohttp.ClientSession() as http:
        url = f"{limited.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
        async with http.post(url, data=body, headers={"Content-Type": "text/plain"}) as response:
            assert response.status == 200
            assert await response.text() == "OK"
        async with http.get(url) as response:
            assert (await response.text()).startswith("40{")
