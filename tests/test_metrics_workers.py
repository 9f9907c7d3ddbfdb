"""``/metrics`` of a hypercorn with two workers: with ``PROMETHEUS_MULTIPROC_DIR`` every scrape
shows the requests of both workers, whichever worker answers it."""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.support.processes import Node, node_env

pytestmark = pytest.mark.ops

REQUESTS = 60


def _total(exposition: str, route: str) -> float:
    pattern = re.compile(
        rf'^tickstock_http_requests_total{{[^}}]*route="{re.escape(route)}"[^}}]*}} (\S+)$', re.M
    )
    return sum(float(value) for value in pattern.findall(exposition))


async def test_request_totals_sum_over_both_workers(
    start_node: Callable[..., Awaitable[Node]],
    database_url: str,
    redis_url: str,
    key_prefix: str,
    tmp_path: Path,
) -> None:
    token = secrets.token_urlsafe(16)
    env = node_env(database_url, redis_url, f"{key_prefix}:metrics-workers")
    # Not created beforehand: the service sets the folder up itself.
    env.update(PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"), TICKSTOCK_METRICS_TOKEN=token)
    node = await start_node(env, workers=2)
    # A connection each: the kernel hands new connections to either worker.
    for _ in range(REQUESTS):
        async with aiohttp.ClientSession() as http, http.get(node.url + "/health") as response:
            assert response.status == 200
    totals = []
    for _ in range(6):
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                node.url + "/metrics", headers={"Authorization": f"Bearer {token}"}
            ) as response,
        ):
            assert response.status == 200
            totals.append(_total(await response.text(), "/health"))
    # start_node's own health checks come on top of ours; every scrape sees them all.
    assert all(total >= REQUESTS for total in totals), totals
    assert totals == sorted(totals)
    assert len(list((tmp_path / "metrics").glob("counter_*.db"))) == 2  # one file per worker
