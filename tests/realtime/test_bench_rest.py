"""`tickstock bench rest` at tiny scale: its counts must match what the server answered."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tickstock.bench.rest import format_rest_report, run_rest_bench


@pytest.mark.ops
async def test_tiny_rest_run_counts_requests_and_errors(
    served: Any, socket_auth: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {socket_auth['token']}"}
    good = await run_rest_bench(
        served.url, headers, "/api/patterns/AAPL", 2, 1.0, warmup=0.2, server_pid=os.getpid()
    )
    assert good["requests"] > 0
    assert good["ok"] == good["requests"]
    assert good["errors"] == {}
    assert 0 < good["p50_ms"] <= good["p99_ms"] <= good["max_ms"]
    assert good["server_cpu_ms_per_request"] > 0
    # The report says how the server logs (its environment: here, this test process's).
    level = os.environ.get("TICKSTOCK_LOG_LEVEL", "INFO (default)")
    assert good["server_logging"].startswith(f"log level {level}, format ")
    assert "req/s" in format_rest_report(good)

    # An unknown symbol answers 404 on every request: all of them are reported as errors.
    bad = await run_rest_bench(served.url, headers, "/api/patterns/NOSUCH9", 2, 1.0, warmup=0.2)
    assert bad["requests"] > 0
    assert bad["ok"] == 0
    assert sum(bad["errors"].values()) == bad["requests"]
    assert set(bad["errors"]) == {"404"}
