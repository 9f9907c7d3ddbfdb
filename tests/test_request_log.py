"""The request log under load: one line for every request, none lost and none twice.

A served node (hypercorn, one worker, INFO) takes a burst of concurrent requests, each with its
own request id; its log must then hold exactly one request line per id, written while serving
(the lines reach the stream through a writer thread, not at shutdown).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import aiohttp
import orjson
import pytest

from tests.support.auth import new_api_token
from tests.support.processes import Node, node_env, wait_until

REQUESTS = 1500
CLIENTS = 50

pytestmark = pytest.mark.heavy


def _request_ids(log: str, log_format: str, path: str) -> Counter[str]:
    ids: Counter[str] = Counter()
    for line in log.splitlines():
        if log_format == "json":
            if not line.startswith("{"):
                continue
            entry = orjson.loads(line)
            if entry.get("logger") == "tickstock.request" and entry.get("path") == path:
                ids[entry["request_id"]] += 1
        else:
            match = re.search(
                rf"GET {re.escape(path)} \d+ [\d.]+ms from 127\.0\.0\.1 \[request_id=([\w.-]+)\]$",
                line,
            )
            if match:
                ids[match.group(1)] += 1
    return ids


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_every_request_of_a_burst_is_logged_once(
    start_node: Callable[..., Awaitable[Node]],
    database_url: str,
    redis_url: str,
    key_prefix: str,
    log_format: str,
) -> None:
    env = node_env(database_url, redis_url, f"{key_prefix}:log-{log_format}")
    env.update(TICKSTOCK_LOG_LEVEL="INFO", TICKSTOCK_LOG_FORMAT=log_format)
    node = await start_node(env)
    token = await new_api_token(database_url, "log")
    path = "/api/patterns/AAPL"
    sent = [f"burst-{uuid.uuid4().hex}" for _ in range(REQUESTS)]
    statuses: Counter[int] = Counter()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for request_id in sent:
        queue.put_nowait(request_id)

    async def client(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            request_id = queue.get_nowait()
            headers = {"Authorization": f"Bearer {token}", "X-Request-ID": request_id}
            async with http.get(node.url + path, headers=headers) as response:
                await response.read()
                statuses[response.status] += 1

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))
    assert statuses == {200: REQUESTS}

    async def all_written() -> bool:
        return len(_request_ids(node.log.read_text(), log_format, path)) >= REQUESTS

    # Written while the node serves on, within moments of the responses.
    await wait_until(all_written, 5, f"{REQUESTS} request lines in the {log_format} log")
    await node.stop()
    logged = _request_ids(node.log.read_text(), log_format, path)
    assert set(logged) == set(sent)
    assert set(logged.values()) == {1}, "a request logged more than once"
