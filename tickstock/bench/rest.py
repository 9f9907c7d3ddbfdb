"""REST load generator: N concurrent keep-alive clients hammering one path for a while.

``await run_rest_bench("http://127.0.0.1:8000", {"Authorization": "Bearer ..."},
"/api/patterns/AAPL", concurrency=50, duration=20)`` returns requests/s, latency percentiles
(p50/p90/p99/max, milliseconds, measured per request from send to the last body byte) and
errors by status. A short warm-up (connections, statement caches) is not counted.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from typing import Any

import aiohttp

from tickstock.bench.stats import latency_summary

__all__ = ["format_rest_report", "process_cpu_seconds", "run_rest_bench", "server_logging"]


def _own_cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and its child processes (a hypercorn master and
    its workers), from Linux /proc; None elsewhere."""
    own = _own_cpu_seconds(pid)
    if own is None:
        return None
    return own + sum(_own_cpu_seconds(child) or 0.0 for child in _children(pid))


def server_logging(pid: int) -> str | None:
    """The log level and format in the server's environment (defaults when unset), or None."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            entries = environ.read().split(b"\0")
    except OSError:
        return None
    env = dict(entry.decode(errors="replace").partition("=")[::2] for entry in entries if entry)
    level = env.get("TICKSTOCK_LOG_LEVEL", "INFO (default)")
    log_format = env.get("TICKSTOCK_LOG_FORMAT", "text (default)")
    return f"log level {level}, format {log_format} (server environment; a .env file may differ)"


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
    server_pid: int | None = None,
) -> dict[str, Any]:
    """Load ``url + path`` with ``concurrency`` clients for ``duration`` seconds after ``warmup``.

    Returns ``requests``, ``requests_per_s``, ``ok`` (2xx count), ``errors`` (non-2xx statuses
    and client exceptions by name), ``p50_ms``/``p90_ms``/``p99_ms``/``p999_ms``/``max_ms``,
    the generator's own CPU use and, given the server's ``server_pid`` (same machine; a
    hypercorn master counts with its workers), ``server_cpu_ms_per_request``: server CPU time per
    request, which does not depend on how fast the generator is, and ``server_logging``.
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
        clients = [
            asyncio.create_task(
                _client(session, target, headers, measure_from, stop_at, latencies, statuses)
            )
            for _ in range(concurrency)
        ]
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu_started = time.process_time()
        server_started = process_cpu_seconds(server_pid) if server_pid else None
        await asyncio.gather(*clients)
        # Requests still in flight at stop_at finish and count: the window is measured as such.
        elapsed = max(time.perf_counter() - measure_from, 1e-9)
        generator_cpu = time.process_time() - cpu_started
        server_ended = process_cpu_seconds(server_pid) if server_pid else None
    ok = sum(count for status, count in statuses.items() if status.startswith("2"))
    result: dict[str, Any] = {
        "url": target,
        "concurrency": concurrency,
        "duration_s": round(elapsed, 3),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "ok": ok,
        "errors": {s: c for s, c in sorted(statuses.items()) if not s.startswith("2")},
        **latency_summary(latencies),
        "generator_cpu_percent": round(generator_cpu / elapsed * 100.0, 1),
    }
    if server_pid is not None and (log_config := server_logging(server_pid)) is not None:
        result["server_logging"] = log_config
    if server_started is not None and server_ended is not None and latencies:
        result["server_cpu_ms_per_request"] = round(
            (server_ended - server_started) * 1000.0 / len(latencies), 3
        )
        result["server_cpu_percent"] = round((server_ended - server_started) / elapsed * 100.0, 1)
    return result


def format_rest_report(result: dict[str, Any]) -> str:
    """A few human-readable lines for :func:`run_rest_bench`'s result."""
    lines = [
        f"target      {result['url']}  concurrency {result['concurrency']}"
        f"  over {result['duration_s']}s measured",
        f"throughput  {result['requests_per_s']} req/s  ({result['requests']} requests,"
        f" {result['ok']} ok); generator CPU {result['generator_cpu_percent']}%",
        f"latency ms  p50 {result['p50_ms']}  p90 {result['p90_ms']}  p99 {result['p99_ms']}"
        f"  p99.9 {result['p999_ms']}  max {result['max_ms']}",
    ]
    if "server_cpu_ms_per_request" in result:
        lines.append(
            f"server      {result['server_cpu_ms_per_request']} ms CPU per request"
            f" ({result['server_cpu_percent']}% of one core)"
        )
    if "server_logging" in result:
        lines.append(f"server      {result['server_logging']}")
    if result["errors"]:
        lines.append(
            "errors      " + ", ".join(f"{key}: {count}" for key, count in result["errors"].items())
        )
    return "\n".join(lines)
