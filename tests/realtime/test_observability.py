"""Metrics, request ids and structured logs."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import aiohttp
import pytest

from tests.support.realtime import Publisher, pattern, unique_symbol
from tickstock.config import load_settings
from tickstock.logconfig import JSONFormatter

METRICS_TOKEN = "metrics-token-for-tests-0123456789"


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = re.match(r"^([a-zA-Z_:]+)(\{(.*)\})? (.+)$", line)
        if match is None or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[3] or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match[4])
    return 0.0


async def test_metrics_need_admin_or_token(serve_app: Any) -> None:
    served = await serve_app(metrics_token=METRICS_TOKEN)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{served.url}/metrics") as response:
            assert response.status == 401
            assert (await response.json())["code"] == "unauthorized"
        wrong = {"Authorization": "Bearer not-the-token"}
        async with http.get(f"{served.url}/metrics", headers=wrong) as response:
            assert response.status == 401
        right = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        async with http.get(f"{served.url}/metrics", headers=right) as response:
            assert response.status == 200
            assert response.content_type.startswith("text/plain")


async def test_counters_move_while_serving(
    serve_app: Any, connect: Any, publisher: Publisher
) -> None:
    served = await serve_app(metrics_token=METRICS_TOKEN)
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    channel = "tickstock.events.patterns"

    async with aiohttp.ClientSession(headers=headers) as http:

        async def scrape() -> str:
            async with http.get(f"{served.url}/metrics") as response:
                return await response.text()

        before = await scrape()
        symbol = unique_symbol()
        client = await connect(served.url)
        await client.call("subscribe_patterns", {"symbol": symbol})
        await publisher.publish(channel, pattern(symbol, "Counted"))
        await publisher.publish(channel, b"not json")
        await client.wait_for("pattern_detected", 1)
        async with http.get(f"{served.url}/health") as response:
            assert response.status == 200
        await asyncio.sleep(1.2)  # state gauges refresh once a second
        after = await scrape()

    def grew(name: str, **labels: str) -> bool:
        return _sample(after, name, **labels) > _sample(before, name, **labels)

    assert grew("tickstock_http_requests_total", method="GET", route="/health", status="200")
    assert grew("tickstock_ingest_messages_total", channel=channel)
    assert grew("tickstock_ingest_events_accepted_total", channel=channel)
    assert grew("tickstock_ingest_rejected_total", channel=channel, reason="invalid_json")
    assert grew("tickstock_deliveries_total")
    assert grew("tickstock_ingest_to_emit_seconds_count")
    assert _sample(after, "tickstock_sockets_connected") >= 1
    assert _sample(after, "tickstock_subscriptions", kind="patterns") >= 1


async def test_request_id_header_and_log_line(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tickstock.request")
    response = await client.get("/health")
    generated = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    response = await client.get("/no/such/route", headers={"X-Request-ID": "trace-12345678"})
    assert response.headers["X-Request-ID"] == "trace-12345678"
    lines = [r for r in caplog.records if r.name == "tickstock.request"]
    assert any(
        getattr(r, "request_id", None) == "trace-12345678" and r.status == 404 for r in lines
    )
    # A hostile id is replaced, not echoed.
    response = await client.get("/health", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert response.headers["X-Request-ID"] != "<script>alert(1)</script>"


def test_json_log_lines_are_one_object_per_event() -> None:
    assert load_settings(log_format="json").log_format == "json"
    record = logging.makeLogRecord(
        {"name": "tickstock.request", "levelname": "INFO", "msg": "GET /health 200", "args": ()}
    )
    record.request_id = "abc12345"
    record.status = 200
    line = JSONFormatter().format(record)
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "GET /health 200"
    assert entry["request_id"] == "abc12345" and entry["status"] == 200
    assert entry["ts"].endswith("Z")
