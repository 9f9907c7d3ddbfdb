"""Where the demo producer keeps what it detects: the producer's own tables, as the real one does.

The real pattern engine writes every detection into the table of its tier (and indicator values
into the indicator tables) before it announces them on Redis, so history, symbol pages and the
REST API show what the live feed showed. Only this development stand-in writes producer tables;
the served app reads them and never writes them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

import asyncpg
import orjson

from tickstock.dev.demo_producer import DemoDetection, DemoIndicator, stored_data

__all__ = ["DemoStore"]

_PATTERN_TABLES: Final = {
    "daily": ("daily_patterns", "expiration_date"),
    "weekly": ("weekly_patterns", "expiration_date"),
    "monthly": ("monthly_patterns", "expiration_date"),
    "intraday": ("intraday_patterns", "expiration_timestamp"),
    "hourly": ("hourly_patterns", "expiration_timestamp"),
    "daily_intraday": ("daily_intraday_patterns", "expiration_timestamp"),
}
_INTRADAY_TIMEFRAMES: Final = frozenset({"1min", "5min", "15min", "30min"})
_METADATA: Final = orjson.dumps({"source": "TickStockPL", "generator": "tickstock-demo"}).decode()


def _at(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


class DemoStore:
    """A small asyncpg pool on the producer tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._definitions: dict[str, int] = {}

    @classmethod
    async def open(cls, dsn: str) -> DemoStore:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, timeout=10)
        return cls(pool)

    async def close(self) -> None:
        await asyncio.wait_for(self.pool.close(), 5)

    async def last_closes(self, symbols: Sequence[str]) -> dict[str, float]:
        """Each symbol's latest daily close, where the seeded (or real) bars end."""
        rows = await self.pool.fetch(
            "SELECT DISTINCT ON (symbol) symbol, close::float8 AS close FROM ohlcv_daily"
            " WHERE symbol = ANY($1::text[]) ORDER BY symbol, date DESC",
            list(symbols),
        )
        return {row["symbol"]: row["close"] for row in rows}

    async def write(
        self, detections: Sequence[DemoDetection], indicators: Sequence[DemoIndicator]
    ) -> None:
        """Store detections in their tier's table and indicator values, in one transaction."""
        if not detections and not indicators:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            by_table: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
            combo: list[tuple[Any, ...]] = []
            for d in detections:
                data = stored_data(d)
                if d.tier == "combo":
                    pattern_id = await self._definition(conn, d.pattern)
                    combo.append(
                        (
                            pattern_id,
                            d.symbol,
                            _at(d.detected_at),
                            d.confidence,
                            d.price,
                            _json(data),
                        )
                    )
                    continue
                table = _PATTERN_TABLES[d.tier]
                levels = [Decimal(f"{value:.2f}") for value in d.levels]
                by_table.setdefault(table, []).append(
                    (
                        d.symbol,
                        d.pattern,
                        d.confidence,
                        _json(data),
                        _at(d.detected_at),
                        None if d.expires_at is None else _at(d.expires_at),
                        levels,
                        _METADATA,
                        d.timeframe,
                    )
                )
            for (pattern_table, expiry), rows in by_table.items():
                await conn.executemany(
                    f"INSERT INTO {pattern_table} (symbol, pattern_type, confidence, pattern_data,"
                    f" detection_timestamp, {expiry}, levels, metadata, timeframe)"
                    " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8::jsonb, $9)",
                    rows,
                )
            if combo:
                await conn.executemany(
                    "INSERT INTO pattern_detections (pattern_id, symbol, detected_at, confidence,"
                    " price_at_detection, pattern_data) VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
                    combo,
                )
            daily = [i for i in indicators if i.timeframe not in _INTRADAY_TIMEFRAMES]
            intraday = [i for i in indicators if i.timeframe in _INTRADAY_TIMEFRAMES]
            for name, values in (("daily_indicators", daily), ("intraday_indicators", intraday)):
                if values:
                    await conn.executemany(
                        f"INSERT INTO {name} (symbol, indicator_type, value_data,"
                        " calculation_timestamp, timeframe, metadata)"
                        " VALUES ($1, $2, $3::jsonb, $4, $5, $6::jsonb)",
                        [
                            (
                                i.symbol,
                                i.indicator,
                                _json(i.value),
                                _at(i.calculated_at),
                                i.timeframe,
                                _METADATA,
                            )
                            for i in values
                        ],
                    )

    async def _definition(self, conn: Any, name: str) -> int:
        """The pattern definition id of ``name`` (the combo tier refers to definitions)."""
        if name not in self._definitions:
            found = await conn.fetchval(
                "INSERT INTO pattern_definitions (name, category) VALUES ($1, 'demo')"
                " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
                name,
            )
            self._definitions[name] = int(found)
        return self._definitions[name]
