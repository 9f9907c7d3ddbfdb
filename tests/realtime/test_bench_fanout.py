"""`tickstock bench fanout` at tiny scale: its accounting must be right."""

from __future__ import annotations

from typing import Any

import pytest

from tickstock.bench.fanout import FanoutConfig, run_fanout_bench
from tickstock.bench.stats import DeliveryLedger, latency_summary


def test_ledger_counts_loss_duplicates_and_order() -> None:
    ledger = DeliveryLedger()
    for seq in (1, 2, 3, 4):
        ledger.expect("AAPL", seq)
    for seq in (1, 3, 2, 3, 9):
        ledger.receive("AAPL", seq)
    assert ledger.account() == {
        "expected": 4,
        "received": 3,
        "lost": 1,
        "duplicates": 1,
        "out_of_order": 1,
        "unexpected": 1,
    }


def test_latency_percentiles() -> None:
    summary = latency_summary(float(v) for v in range(1, 1001))
    assert summary["p50_ms"] == 500
    assert summary["p99_ms"] == 990
    assert summary["p999_ms"] == 999
    assert summary["max_ms"] == 1000


@pytest.mark.ops
@pytest.mark.parametrize("batch_ms", [0, 20])
async def test_tiny_fanout_run_accounts_every_delivery(
    served: Any, socket_auth: dict[str, Any], redis_url: str, batch_ms: int
) -> None:
    # One frame per event, and coalesced frames (--batch-ms): the same accounting.
    config = FanoutConfig(
        batch_ms=batch_ms,
        url=served.url,
        token=socket_auth["token"],
        clients=6,
        symbols_per_client=2,
        universe=4,
        rate=40,
        duration=2.0,
        warmup=0.5,
        redis_url=redis_url,
        processes=2,
        inject_lost=3,
        drain=1.5,
    )
    result = await run_fanout_bench(config)
    assert result["connected"] == 6 and result["failed"] == 0
    assert result["published"] >= 80
    # Every event reached each subscriber once, in order, except the deliberately lost ones.
    assert result["duplicates"] == 0
    assert result["out_of_order"] == 0
    assert result["injected_lost"] > 0
    assert result["lost"] == result["injected_lost"]
    assert result["received"] == result["expected"] - result["lost"]
    assert result["received"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]


async def test_a_burst_run_accounts_every_delivery_of_the_burst(
    served: Any, socket_auth: dict[str, Any], redis_url: str
) -> None:
    """``--burst``: the steady phase, then many events within a second, all accounted."""
    config = FanoutConfig(
        url=served.url,
        token=socket_auth["token"],
        clients=4,
        symbols_per_client=3,
        universe=6,
        rate=20,
        duration=1.0,
        warmup=0.3,
        redis_url=redis_url,
        processes=1,
        drain=1.5,
        burst=600,
    )
    result = await run_fanout_bench(config)
    burst = result["burst"]
    assert burst["published"] == 600
    assert burst["deliveries"] > 600  # each of the 6 symbols has about two subscribers
    assert result["published"] >= 600 + 20
    assert (result["lost"], result["duplicates"], result["out_of_order"]) == (0, 0, 0)
    assert result["received"] == result["expected"] >= burst["deliveries"]
    assert burst["last_delivery_after_last_publish_s"] >= 0


@pytest.mark.ops
async def test_reference_server_runs_the_same_benchmark(redis_url: str, monkeypatch: Any) -> None:
    # The bare python-socketio relay docs/PERFORMANCE.md compares tickstock with: the benchmark
    # runs against it unchanged and accounts for every delivery.
    import asyncio
    import contextlib

    import aiohttp
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from tests.support.env import free_port
    from tickstock.bench import reference

    monkeypatch.setenv("TICKSTOCK_REDIS_URL", redis_url)
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.graceful_timeout = 1
    stop = asyncio.Event()
    task = asyncio.create_task(serve(reference.app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"{url}/plain") as response:
                        assert await response.json() == {"status": "success", "data": []}
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.025)
        result = await run_fanout_bench(
            FanoutConfig(
                url=url,
                token="ignored",
                clients=4,
                symbols_per_client=2,
                universe=4,
                rate=40,
                duration=1.5,
                warmup=0.5,
                redis_url=redis_url,
                processes=1,
                drain=1.0,
            )
        )
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    assert result["connected"] == 4
    assert result["expected"] > 0
    assert result["received"] == result["expected"]
    assert (result["lost"], result["duplicates"], result["out_of_order"]) == (0, 0, 0)
