"""A backtest end to end without a browser: asked for through the API, run by the demo producer's
job runner over the seeded tables, stored and served. The figures are worked out again here from
the raw rows with a computation of the test's own (not tickstock/dev/backtest.py), and must match
what GET /api/jobs/<id> serves and what the jobs table stores: metrics, per pattern, trades, curve.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, timedelta
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis

from tests.support.auth import MakeToken, UserLogin
from tickstock.dev.demo_jobs import run_job_runner

# The capital is this run's own: on a Redis shared with other test sessions, the runner takes the
# job that carries it and no other (user ids repeat across the sessions' databases).
PARAMETERS = {
    "initial_capital": 25_000.0 + secrets.randbelow(10**6) / 100,
    "commission_rate": 0.002,
    "slippage_rate": 0.001,
    "max_position_size": 0.4,
    "stop_loss_pct": 0.03,
    "take_profit_pct": 0.04,
    "max_hold_days": 5,
}
SYMBOLS = ["AAPL", "MSFT", "NVDA"]


# --------------------------------------------------------------------------- the reference


def reference(
    bar_rows: list[asyncpg.Record],
    detection_rows: list[asyncpg.Record],
    start: date,
    end: date,
    patterns: set[str],
    p: dict[str, float],
) -> dict[str, Any]:
    """The backtest rules of docs/ARCHITECTURE.md, written out plainly: a day-by-day loop."""
    bars: dict[str, dict[date, asyncpg.Record]] = defaultdict(dict)
    for r in bar_rows:
        if start <= r["date"] <= end:
            bars[r["symbol"]][r["date"]] = r
    days = sorted({d for per in bars.values() for d in per})
    last_bar = {s: max(per) for s, per in bars.items()}

    # The signal of each symbol and session: the most confident detection (then by name).
    best: dict[tuple[str, date], tuple[float, str]] = {}
    for r in detection_rows:
        day = r["detected_at"].astimezone(UTC).date()
        if r["pattern"] not in patterns or not start <= day <= end:
            continue
        key = (r["symbol"], day)
        candidate = (-r["confidence"], r["pattern"])
        if key not in best or candidate < best[key]:
            best[key] = candidate
    wanted: dict[tuple[str, date], str] = {}
    for (symbol, day), (_, pattern) in sorted(best.items()):
        later = [d for d in sorted(bars.get(symbol, {})) if d > day]
        if later and (symbol, later[0]) not in wanted:
            wanted[(symbol, later[0])] = pattern

    cash = equity = p["initial_capital"]
    held: dict[str, dict[str, Any]] = {}
    close: dict[str, float] = {}
    trades: list[dict[str, Any]] = []
    curve: list[tuple[str, float]] = []
    in_market: list[bool] = []
    realised: dict[str, float] = defaultdict(float)
    names = sorted(patterns)
    per_curve: dict[str, list[float]] = {n: [] for n in names}
    per_active: dict[str, list[bool]] = {n: [] for n in names}
    for day in days:
        today = sorted(s for s in bars if day in bars[s])
        busy = {h["pattern"] for h in held.values()}
        for s in today:
            if (s, day) in wanted and s not in held:
                fill = bars[s][day]["open"] * (1 + p["slippage_rate"])
                budget = min(equity * p["max_position_size"], cash)
                if budget > 0:
                    cash -= budget
                    held[s] = {
                        "pattern": wanted[(s, day)],
                        "entry": day,
                        "fill": fill,
                        "shares": budget / (fill * (1 + p["commission_rate"])),
                        "cost": budget,
                        "days": 0,
                    }
                    busy.add(wanted[(s, day)])
        for s in today:
            bar = bars[s][day]
            close[s] = bar["close"]
            if s not in held:
                continue
            h = held[s]
            h["days"] += 1
            stop = h["fill"] * (1 - p["stop_loss_pct"])
            target = h["fill"] * (1 + p["take_profit_pct"])
            out = None
            if h["days"] > 1 and bar["open"] <= stop:
                out = (bar["open"], "stop_loss")
            elif h["days"] > 1 and bar["open"] >= target:
                out = (bar["open"], "take_profit")
            elif bar["low"] <= stop:
                out = (stop, "stop_loss")
            elif bar["high"] >= target:
                out = (target, "take_profit")
            elif h["days"] >= p["max_hold_days"]:
                out = (bar["close"], "max_hold")
            elif day == last_bar[s]:
                out = (bar["close"], "end_of_data")
            if out is None:
                continue
            price = out[0] * (1 - p["slippage_rate"])
            proceeds = h["shares"] * price * (1 - p["commission_rate"])
            cash += proceeds
            realised[h["pattern"]] += proceeds - h["cost"]
            trades.append(
                {
                    "symbol": s,
                    "pattern": h["pattern"],
                    "entry_date": h["entry"].isoformat(),
                    "entry_price": h["fill"],
                    "exit_date": day.isoformat(),
                    "exit_price": price,
                    "exit_reason": out[1],
                    "shares": h["shares"],
                    "pnl": proceeds - h["cost"],
                    "return": proceeds / h["cost"] - 1,
                }
            )
            del held[s]
        equity = cash + sum(h["shares"] * close[s] for s, h in held.items())
        curve.append((day.isoformat(), equity))
        in_market.append(bool(busy))
        for n in names:
            open_value = sum(
                h["shares"] * close[s] - h["cost"] for s, h in held.items() if h["pattern"] == n
            )
            per_curve[n].append(p["initial_capital"] + realised[n] + open_value)
            per_active[n].append(n in busy)
    return {
        "metrics": figures(p["initial_capital"], [v for _, v in curve], in_market, trades),
        "pattern_metrics": {
            n: figures(
                p["initial_capital"],
                per_curve[n],
                per_active[n],
                [t for t in trades if t["pattern"] == n],
            )
            for n in names
        },
        "equity_curve": curve,
        "trades": trades,
    }


def figures(
    initial: float, values: list[float], active: list[bool], trades: list[dict[str, Any]]
) -> dict[str, Any]:
    final = values[-1] if values else initial
    wins = [t for t in trades if t["return"] > 0]
    losses = [t for t in trades if t["return"] <= 0]
    worst, peak = 0.0, initial
    for v in values:
        peak = max(peak, v)
        worst = max(worst, 1 - v / peak)
    chain = [initial, *values]
    daily = [chain[i + 1] / chain[i] - 1 for i in range(len(chain) - 1)]
    sharpe = None
    if len(daily) > 1:
        mean = sum(daily) / len(daily)
        sd = math.sqrt(sum((x - mean) ** 2 for x in daily) / (len(daily) - 1))
        sharpe = mean / sd * math.sqrt(252) if sd > 1e-12 else None
    lost = -sum(t["pnl"] for t in losses)
    return {
        "final_equity": final,
        "total_return": final / initial - 1,
        "annualized_return": (final / initial) ** (252 / len(values)) - 1 if values else None,
        "total_trades": len(trades),
        "winning_trades": len(wins),
        "losing_trades": len(losses),
        "win_rate": len(wins) / len(trades) if trades else None,
        "avg_win": sum(t["return"] for t in wins) / len(wins) if wins else None,
        "avg_loss": sum(t["return"] for t in losses) / len(losses) if losses else None,
        "profit_factor": sum(t["pnl"] for t in wins) / lost if losses and lost > 0 else None,
        "max_drawdown": worst,
        "sharpe_ratio": sharpe,
        "exposure": sum(active) / len(values) if values else 0.0,
    }


def close_to(served: Any, expected: Any, path: str = "") -> None:
    """Equal up to the rounding of the published figures (money 0.01, ratios 1e-6)."""
    if isinstance(expected, dict):
        for key, value in expected.items():
            assert key in served, f"{path}.{key} missing"
            close_to(served[key], value, f"{path}.{key}")
    elif isinstance(expected, list | tuple):
        assert len(served) == len(expected), f"{path}: {len(served)} != {len(expected)}"
        for i, (a, b) in enumerate(zip(served, expected, strict=True)):
            close_to(a, b, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert served is not None and math.isclose(served, expected, rel_tol=1e-6, abs_tol=0.006), (
            f"{path}: {served} != {expected}"
        )
    else:
        assert served == expected, f"{path}: {served!r} != {expected!r}"


# --------------------------------------------------------------------------- the test


@pytest.fixture(name="producer")
async def _producer(database_url: str, redis_url: str) -> AsyncIterator[None]:
    """The demo producer's job runner, taking this test's job only (shared Redis)."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    redis = aioredis.Redis.from_url(redis_url)
    stop, ready = asyncio.Event(), asyncio.Event()
    runner = asyncio.create_task(
        run_job_runner(
            redis,
            pool,
            stop=stop,
            pace=0.0,
            ready=ready.set,
            accept=lambda job: (
                (job.get("parameters") or {}).get("initial_capital")
                == PARAMETERS["initial_capital"]
            ),
        )
    )
    await asyncio.wait_for(ready.wait(), 10)
    yield
    stop.set()
    await asyncio.wait_for(runner, 10)
    await redis.aclose()
    await pool.close()


async def test_served_backtest_figures_match_an_independent_computation(
    serve_app: Any,
    producer: None,
    user: UserLogin,
    make_token: MakeToken,
    conn: asyncpg.Connection,
) -> None:
    served = await serve_app()
    headers = {"Authorization": f"Bearer {await make_token(user)}"}
    last = await conn.fetchval("SELECT max(date) FROM ohlcv_daily WHERE symbol = 'AAPL'")
    start, end = last - timedelta(days=100), last
    patterns = [r["name"] for r in await conn.fetch("SELECT name FROM pattern_definitions")]
    body = {
        "symbols": SYMBOLS,
        "patterns": patterns,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "parameters": PARAMETERS,
    }
    async with aiohttp.ClientSession(served.url, headers=headers) as http:
        async with http.post("/api/jobs/backtests", json=body) as response:
            assert response.status == 201, await response.text()
            job_id = (await response.json())["data"]["id"]
        deadline = time.monotonic() + 30
        while True:
            async with http.get(f"/api/jobs/{job_id}") as response:
                assert response.status == 200
                job = (await response.json())["data"]
            if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert job["status"] == "completed", job
        async with http.get(f"/api/jobs/{job_id}/trades", params={"limit": "500"}) as response:
            assert response.status == 200
            served_trades = (await response.json())["data"]

    # The raw rows, as stored, and the test's own computation over them.
    bar_rows = await conn.fetch(
        "SELECT symbol, date, open, high, low, close FROM ohlcv_daily WHERE symbol = ANY($1)",
        SYMBOLS,
    )
    detection_rows = await conn.fetch(
        "SELECT symbol, pattern_type AS pattern, detection_timestamp AS detected_at, confidence"
        " FROM daily_patterns WHERE symbol = ANY($1)"
        " UNION ALL SELECT symbol, pattern_type, detection_timestamp, confidence"
        " FROM weekly_patterns WHERE symbol = ANY($1)"
        " UNION ALL SELECT symbol, pattern_type, detection_timestamp, confidence"
        " FROM monthly_patterns WHERE symbol = ANY($1)"
        " UNION ALL SELECT d.symbol, p.name, d.detected_at, d.confidence"
        " FROM pattern_detections AS d JOIN pattern_definitions AS p ON p.id = d.pattern_id"
        " WHERE d.symbol = ANY($1)",
        SYMBOLS,
    )
    expected = reference(bar_rows, detection_rows, start, end, set(patterns), PARAMETERS)
    assert len(expected["trades"]) >= 5, "the seeded case should trade"
    assert {t["exit_reason"] for t in expected["trades"]} >= {"stop_loss", "take_profit"}

    results = job["results"]
    close_to(results["metrics"], expected["metrics"], "metrics")
    traded = {t["pattern"] for t in expected["trades"]}
    close_to(
        {n: results["pattern_metrics"][n] for n in traded},
        {n: expected["pattern_metrics"][n] for n in traded},
        "pattern_metrics",
    )
    close_to(results["equity_curve"], expected["equity_curve"], "equity_curve")

    def in_order(trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(trades, key=lambda t: (t["entry_date"], t["symbol"]))

    close_to(in_order(results["trades"]), in_order(expected["trades"]), "trades")
    close_to(in_order(served_trades), in_order(expected["trades"]), "trades endpoint")
    # What is stored is what is served.
    stored = await conn.fetchval("SELECT results FROM jobs WHERE id = $1::uuid", job_id)
    stored = orjson.loads(stored) if isinstance(stored, str) else stored
    close_to(stored["metrics"], expected["metrics"], "stored metrics")
    close_to(stored["equity_curve"], expected["equity_curve"], "stored curve")
