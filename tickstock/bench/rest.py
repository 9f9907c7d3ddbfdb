"""REST load generator: N concurrent keep-alive clients hammering one path for a while.

``await run_rest_bench("http://127.0.0.1:8000", {"Authorization": "Bearer ..."},
"/api/patterns/AAPL", concurrency=50, duration=20)`` returns requests/s, latency percentiles
(p50/p90/p99/max, milliseconds, measured per request from send to the last body byte) and
errors by status. A short warm-up (connections, statement caches) is not counted.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp

from tickstock.bench.stats import latency_summary

__all__ = ["run_rest_bench"]


async def _client(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    measure_from: float,
    stop_at: float,
    latencies: list[float],
    statuses: Counter[str],
) -> None:
    clock = time.perf_counter
    while True:
        started = clock()
        if started >= stop_at:
            return
        try:
            async with session.get(url, headers=headers) as response:
                await response.read()
                status = str(response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = type(exc).__name__
        if started >= measure_from:
            latencies.append((clock() - started) * 1000.0)
            statuses[status] += 1


async def run_rest_bench(
    url: str,
    headers: dict[str, str],
    path: str,
    concurrency: int,
    duration: float,
    *,
    warmup: float = 2.0,
    request_timeout: float = 10.0,
) -> dict[str, Any]:
    """Load ``url + path`` with ``concurrency`` clients for ``duration`` seconds after ``warmup``.

    Returns ``requests``, ``requests_per_s``, ``ok`` (2xx count), ``errors`` (non-2xx statuses
    and client exceptions by name), ``p50_ms``/``p90_ms``/``p99_ms``/``p999_ms``/``max_ms``.
    """
    if concurrency < 1 or duration <= 0:
        raise ValueError("concurrency must be >= 1 and duration > 0")
    target = url.rstrip("/") + path
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=request_timeout)
    ) as session:
        started = time.perf_counter()
        measure_from = started + warmup
        stop_at = measure_from + duration
        await asyncio.gather(
            *(
                _client(session, target, headers, measure_from, stop_at, latencies, statuses)
                for _ in range(concurrency)
            )
        )
        # Requests still in flight at stop_at finish and count: the window is measured as such.
        elapsed = max(time.perf_counter() - measure_from, 1e-9)
    ok = sum(count for status, count in statuses.items() if status.startswith("2"))
    return {
        "url": target,
        "concurrency": concurrency,
        "duration_s": round(elapsed, 3),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "ok": ok,
        "errors": {s: c for s, c in sorted(statuses.items()) if not s.startswith("2")},
        **latency_summary(latencies),
    }
