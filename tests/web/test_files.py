"""Static files: sent whole and right (ranges, 304s), and no file left open by a cancelled send."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import warnings
from pathlib import Path
from typing import Any

from quart.wrappers.response import FileBody as QuartFileBody

from tickstock.web.files import INLINE_FILE_BYTES, FileBody

STATIC = Path(__file__).resolve().parents[2] / "tickstock" / "web" / "static"
SAMPLE = STATIC / "js" / "indicators.js"


def _open_descriptors(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:
            continue
    return count


async def _cancel_while_opening(body_class: type[QuartFileBody]) -> list[str]:
    """Send a file and cancel the send at each of many points (a client leaving); return the
    unclosed-file warnings raised."""

    async def send() -> None:
        async with body_class(SAMPLE) as body:
            async for _ in body:
                pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for delay in [0.0] * 10 + [0.0002 * step for step in range(1, 30)]:
            task = asyncio.create_task(send())
            await asyncio.sleep(delay)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.sleep(0.2)  # a worker thread still opening the file has finished by now
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


async def test_a_send_cancelled_while_the_file_opens_leaves_no_file_open() -> None:
    assert await _cancel_while_opening(FileBody) == []
    assert _open_descriptors(SAMPLE) == 0


async def test_quarts_own_body_would_leave_it_to_the_garbage_collector() -> None:
    """The case the body above exists for: Quart's body, cancelled there, drops an open file."""
    leaked = await _cancel_while_opening(QuartFileBody)
    assert any("unclosed file" in message and SAMPLE.name in message for message in leaked)


async def test_the_body_is_the_file_and_honours_a_range() -> None:
    whole = SAMPLE.read_bytes()
    async with FileBody(SAMPLE) as body:
        assert b"".join([chunk async for chunk in body]) == whole
    ranged = FileBody(SAMPLE)
    await ranged.make_conditional(10, 30)
    async with ranged as body:
        assert b"".join([chunk async for chunk in body]) == whole[10:30]
    assert _open_descriptors(SAMPLE) == 0


async def test_a_large_file_is_streamed(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(INLINE_FILE_BYTES + 1))
    async with FileBody(big) as body:
        chunks = [chunk async for chunk in body]
    assert len(chunks) > 1
    assert b"".join(chunks) == big.read_bytes()
    assert _open_descriptors(big) == 0


async def test_static_files_are_served_with_range_and_revalidation(client: Any) -> None:
    whole = SAMPLE.read_bytes()
    response = await client.get("/static/js/indicators.js")
    assert response.status_code == 200
    assert await response.get_data() == whole
    etag = response.headers["ETag"]
    assert response.headers["Content-Length"] == str(len(whole))

    again = await client.get("/static/js/indicators.js", headers={"If-None-Match": etag})
    assert again.status_code == 304

    part = await client.get("/static/js/indicators.js", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert await part.get_data() == whole[:100]
