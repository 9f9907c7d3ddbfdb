"""The ingest normaliser: every producer shape and alias of SPEC §2, rejects, and never raising."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickstock.realtime.events import (
    DEFAULT_CHANNELS,
    MAX_MESSAGE_BYTES_DEFAULT,
    REJECT_REASONS,
    SYMBOL_RE,
    TIERS,
    Event,
    LiveDetection,
    NormaliseResult,
    channel_kind,
    normalise,
)

NOW = datetime(2026, 11, 26, 14, 30, 0, 4000, tzinfo=UTC)
EPOCH = 1795703400.0  # 2026-11-26T14:30:00Z
PATTERNS = "tickstock.events.patterns"
STREAMING = "tickstock:patterns:streaming"
DETECTED = "tickstock:patterns:detected"
INDICATORS = "tickstock.events.indicators"
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

BASE = {"symbol": "AAPL", "pattern": "Breakout", "confidence": 0.88}


def run(message: Any, channel: str = PATTERNS, **kwargs: Any) -> NormaliseResult:
    raw = message if isinstance(message, bytes | str) else orjson.dumps(message)
    return normalise(raw, channel, received_at=NOW, **kwargs)


def one(message: Any, channel: str = PATTERNS) -> Event:
    result = run(message, channel)
    assert result.rejects == [], result.rejects
    assert len(result.events) == 1
    return result.events[0]


def reason(message: Any, channel: str = PATTERNS, **kwargs: Any) -> str:
    result = run(message, channel, **kwargs)
    assert result.events == [] and len(result.rejects) == 1, result
    reject = result.rejects[0]
    assert 0 < len(reject.detail) <= 205 and len(reject.sample) <= 200
    return reject.reason


def test_flat_message_normalises_to_the_spec_schema() -> None:
    event = one(
        {
            "symbol": "AAPL",
            "pattern": "Breakout",
            "confidence": 0.88,
            "tier": "daily",
            "timeframe": "daily",
            "detected_at": "2026-11-26T14:30:00Z",
            "price": 185.2,
            "levels": [{"type": "support", "value": 180.5}],
            "indicators": {"rsi": 65.0},
        }
    )
    assert (event.kind, event.event_type, event.symbol) == ("pattern", "pattern_detected", "AAPL")
    assert event.data == {
        "event_id": event.event_id,
        "symbol": "AAPL",
        "pattern": "Breakout",
        "confidence": 0.88,
        "tier": "daily",
        "timeframe": "daily",
        "detected_at": "2026-11-26T14:30:00.000Z",
        "expires_at": None,
        "price": 185.2,
        "levels": [{"type": "support", "value": 180.5}],
        "indicators": {"rsi": 65.0},
        "metadata": {},
        "source": "TickStockPL",
        "channel": PATTERNS,
        "received_at": "2026-11-26T14:30:00.004Z",
        "priority": "HIGH",
    }
    # The live shape is the one declared for every view of a detection, plus where it came from.
    assert set(event.data) == set(LiveDetection.__annotations__)
    assert re.fullmatch(r"[0-9a-f]{24}", event.event_id)
    orjson.dumps(event.data)  # JSON-serialisable as is


INNER = {**BASE, "detected_at": "2026-11-26T14:30:00Z"}
EXPECTED_CORE = {
    "symbol": "AAPL",
    "pattern": "Breakout",
    "confidence": 0.88,
    "detected_at": "2026-11-26T14:30:00.000Z",
}


@pytest.mark.parametrize(
    ("message", "channel", "expected"),
    [
        pytest.param(INNER, PATTERNS, {**EXPECTED_CORE, "tier": "daily"}, id="flat"),
        pytest.param({"data": INNER}, PATTERNS, EXPECTED_CORE, id="data"),
        pytest.param({"data": {"data": INNER}}, PATTERNS, EXPECTED_CORE, id="data.data"),
        pytest.param({"detection": INNER}, STREAMING, EXPECTED_CORE, id="detection"),
        pytest.param({"payload": INNER}, PATTERNS, EXPECTED_CORE, id="payload"),
        pytest.param(
            {
                "event_type": "pattern_detected",
                "pattern_data": {**INNER, "expiration_date": "2026-11-29T20:30:00Z"},
                "tier": "weekly",
                "source": "TickStockPL",
            },
            PATTERNS,
            {**EXPECTED_CORE, "tier": "weekly", "expires_at": "2026-11-29T20:30:00.000Z"},
            id="pattern_data-with-outer-tier",
        ),
        pytest.param(
            {"type": "pattern", "timestamp": EPOCH, "source": "hourly", "data": BASE},
            PATTERNS,
            {**EXPECTED_CORE, "tier": "hourly", "timeframe": "hourly", "source": "TickStockPL"},
            id="outer-fields-fill-inner",
        ),
        pytest.param(
            {"symbol": "AAPL", "data": {"pattern": "Breakout", "confidence": 0.88}, "ts": EPOCH},
            PATTERNS,
            EXPECTED_CORE,
            id="symbol-outside-details-inside",
        ),
        pytest.param(
            {**INNER, "pattern": None, "pattern_type": "Breakout"},
            PATTERNS,
            EXPECTED_CORE,
            id="pattern_type",
        ),
        pytest.param(
            {"symbol": "AAPL", "pattern_name": "Breakout", "confidence": 0.88, "timestamp": EPOCH},
            PATTERNS,
            EXPECTED_CORE,
            id="pattern_name",
        ),
        pytest.param(
            {**BASE, "detected_at": "2026-11-26T09:30:00-05:00"},
            PATTERNS,
            EXPECTED_CORE,
            id="iso-offset",
        ),
        pytest.param(
            {**BASE, "detected_at": "2026-11-26T14:30:00"}, PATTERNS, EXPECTED_CORE, id="iso-naive"
        ),
        pytest.param(
            {**BASE, "detection_timestamp": "2026-11-26T14:30:00.250+00:00"},
            PATTERNS,
            {**EXPECTED_CORE, "detected_at": "2026-11-26T14:30:00.250Z"},
            id="iso-fraction",
        ),
        pytest.param({**BASE, "timestamp": EPOCH}, PATTERNS, EXPECTED_CORE, id="epoch-s"),
        pytest.param(
            {**BASE, "timestamp": EPOCH + 0.123},
            PATTERNS,
            {**EXPECTED_CORE, "detected_at": "2026-11-26T14:30:00.123Z"},
            id="epoch-s-fraction",
        ),
        pytest.param({**BASE, "timestamp": 1795703400000}, PATTERNS, EXPECTED_CORE, id="epoch-ms"),
        pytest.param({**BASE, "time": "1795703400"}, PATTERNS, EXPECTED_CORE, id="epoch-string"),
        pytest.param(
            {**BASE, "detected_at": "1795703400123"},
            PATTERNS,
            {**EXPECTED_CORE, "detected_at": "2026-11-26T14:30:00.123Z"},
            id="epoch-ms-string",
        ),
        pytest.param(
            {**BASE},
            PATTERNS,
            {**EXPECTED_CORE, "detected_at": "2026-11-26T14:30:00.004Z"},
            id="no-timestamp-is-received-at",
        ),
        pytest.param({**INNER, "confidence": 88}, PATTERNS, EXPECTED_CORE, id="confidence-0-100"),
        pytest.param({**INNER, "confidence": "0.88"}, PATTERNS, EXPECTED_CORE, id="confidence-str"),
        pytest.param(
            {**INNER, "confidence": 100}, PATTERNS, {"confidence": 1.0}, id="confidence-100"
        ),
        pytest.param({**INNER, "confidence": 1}, PATTERNS, {"confidence": 1.0}, id="confidence-1"),
        pytest.param({**INNER, "confidence": 0}, PATTERNS, {"confidence": 0.0}, id="confidence-0"),
        pytest.param(
            {**INNER, "confidence_score": 0.7, "confidence": None},
            PATTERNS,
            {"confidence": 0.7},
            id="confidence_score",
        ),
        pytest.param(
            {**INNER, "levels": [180.5, 190]},
            PATTERNS,
            {"levels": [{"type": "level", "value": 180.5}, {"type": "level", "value": 190.0}]},
            id="levels-numbers-without-price",
        ),
        pytest.param(
            {**INNER, "price": 185.2, "levels": [180.5, "190", 185.2]},
            PATTERNS,
            {
                "price": 185.2,
                "levels": [
                    {"type": "support", "value": 180.5},
                    {"type": "resistance", "value": 190.0},
                    {"type": "support", "value": 185.2},
                ],
            },
            id="levels-numbers-typed-by-the-price",
        ),
        pytest.param(
            {
                **INNER,
                "pattern_type": "Breakout",
                "pattern_data": {"price": 185.2, "indicators": {"rsi": 61}},
                "levels": [180.5, 190],
            },
            PATTERNS,
            {
                "price": 185.2,
                "indicators": {"rsi": 61.0},
                "levels": [
                    {"type": "support", "value": 180.5},
                    {"type": "resistance", "value": 190.0},
                ],
            },
            id="table-row-price-in-pattern-data",
        ),
        pytest.param(
            {
                **INNER,
                "levels": [
                    {"type": "support", "value": 180.5},
                    {"type": "resistance", "price": 190},
                ],
            },
            PATTERNS,
            {
                "levels": [
                    {"type": "support", "value": 180.5},
                    {"type": "resistance", "value": 190.0},
                ]
            },
            id="levels-objects",
        ),
        pytest.param(
            {**INNER, "levels": {"support": 180.5, "resistance": [190, 195]}},
            PATTERNS,
            {
                "levels": [
                    {"type": "support", "value": 180.5},
                    {"type": "resistance", "value": 190.0},
                    {"type": "resistance", "value": 195.0},
                ]
            },
            id="levels-mapping",
        ),
        pytest.param({**INNER, "levels": None}, PATTERNS, {"levels": []}, id="levels-null"),
        pytest.param(
            {**INNER, "tier": "Intraday"},
            PATTERNS,
            {"tier": "intraday", "timeframe": "1min"},
            id="tier",
        ),
        pytest.param(
            {**INNER, "source": "daily_intraday"},
            PATTERNS,
            {"tier": "daily_intraday", "timeframe": "5min", "source": "TickStockPL"},
            id="tier-from-source",
        ),
        pytest.param(
            {**INNER, "source": "combo"}, PATTERNS, {"tier": "combo"}, id="tier-from-source-combo"
        ),
        pytest.param(
            {**INNER, "timeframe": "1min"},
            PATTERNS,
            {"tier": "intraday", "timeframe": "1min"},
            id="timeframe-1min",
        ),
        pytest.param(
            {**INNER, "timeframe": "5m"},
            PATTERNS,
            {"tier": "intraday", "timeframe": "5min"},
            id="5m",
        ),
        pytest.param(
            {**INNER, "timeframe": "1h"},
            PATTERNS,
            {"tier": "hourly", "timeframe": "hourly"},
            id="1h",
        ),
        pytest.param(
            {**INNER, "timeframe": "60min"},
            PATTERNS,
            {"tier": "hourly", "timeframe": "hourly"},
            id="60min",
        ),
        pytest.param(
            {**INNER, "timeframe": "hourly"}, PATTERNS, {"tier": "hourly"}, id="timeframe-hourly"
        ),
        pytest.param(
            {**INNER, "timeframe": "daily"}, STREAMING, {"tier": "daily"}, id="timeframe-daily"
        ),
        pytest.param(
            {**INNER, "timeframe": "1d"},
            STREAMING,
            {"tier": "daily", "timeframe": "daily"},
            id="1d",
        ),
        pytest.param({**INNER, "timeframe": "weekly"}, PATTERNS, {"tier": "weekly"}, id="weekly"),
        pytest.param(
            {**INNER, "timeframe": "1W"},
            PATTERNS,
            {"tier": "weekly", "timeframe": "weekly"},
            id="1W",
        ),
        pytest.param(
            {**INNER, "timeframe": "1M"},
            PATTERNS,
            {"tier": "monthly", "timeframe": "monthly"},
            id="1M-month",
        ),
        pytest.param(
            {**INNER, "timeframe": "3 candles"},
            STREAMING,
            {"tier": "intraday", "timeframe": "3 candles"},
            id="timeframe-unknown-keeps-channel-tier",
        ),
        pytest.param(
            {**INNER, "tier": "hourly", "timeframe": "1min"},
            PATTERNS,
            {"tier": "hourly", "timeframe": "1min"},
            id="tier-wins-over-timeframe",
        ),
        pytest.param(INNER, STREAMING, {"tier": "intraday"}, id="streaming-default-intraday"),
        pytest.param(INNER, DETECTED, {"tier": "intraday"}, id="detected-default-intraday"),
        pytest.param({**INNER, "symbol": "brk.b"}, PATTERNS, {"symbol": "BRK.B"}, id="BRK.B"),
        pytest.param({**INNER, "symbol": " bf-b "}, PATTERNS, {"symbol": "BF-B"}, id="BF-B"),
        pytest.param(
            {**INNER, "symbol": None, "ticker": "MSFT"}, PATTERNS, {"symbol": "MSFT"}, id="ticker"
        ),
        pytest.param(
            {**INNER, "current_price": "185.25"}, PATTERNS, {"price": 185.25}, id="current_price"
        ),
        pytest.param(
            {**INNER, "expires_at": EPOCH + 86400 * 3},
            PATTERNS,
            {"expires_at": "2026-11-29T14:30:00.000Z"},
            id="expires-epoch",
        ),
        pytest.param(
            {**INNER, "source": "scanner-7"}, PATTERNS, {"source": "scanner-7"}, id="source-kept"
        ),
        pytest.param(
            {**INNER, "event_id": "pl-123"},
            PATTERNS,
            {"event_id": "pl-123"},
            id="producer-event_id",
        ),
        pytest.param({**INNER, "id": 42}, PATTERNS, {"event_id": "42"}, id="producer-id"),
        pytest.param(
            {
                **INNER,
                "type": "pattern_detected",
                "volume": 12000,
                "pattern_data": {"bars": 3},
                "metadata": {"engine": "v2"},
            },
            PATTERNS,
            {"metadata": {"volume": 12000, "pattern_data": {"bars": 3}, "engine": "v2"}},
            id="unknown-fields-survive-in-metadata",
        ),
        pytest.param(
            {**INNER, "type": "custom_kind"},
            PATTERNS,
            {"metadata": {"type": "custom_kind"}},
            id="non-generic-type-kept",
        ),
        pytest.param(
            {**INNER, "indicators": {"rsi": 65, "trend": "up"}},
            PATTERNS,
            {"indicators": {"rsi": 65.0, "trend": "up"}},
            id="indicators",
        ),
    ],
)
def test_pattern_shapes_and_aliases(
    message: dict[str, Any], channel: str, expected: dict[str, Any]
) -> None:
    event = one(message, channel)
    for key, value in expected.items():
        assert event.data[key] == value, key
    assert event.symbol == event.data["symbol"]
    assert event.data["channel"] == channel
    assert event.data["tier"] in TIERS
    assert ISO_MS.fullmatch(event.data["detected_at"])
    assert event.data["received_at"] == "2026-11-26T14:30:00.004Z"


def test_text_input_is_accepted_like_bytes() -> None:
    as_text = normalise(orjson.dumps(INNER).decode(), PATTERNS, received_at=NOW)
    assert as_text == run(INNER)


def test_batch_items_are_events_and_a_bad_item_rejects_only_itself() -> None:
    result = run(
        {
            "type": "pattern_batch",
            "id": "batch-1",
            "tier": "hourly",
            "timestamp": EPOCH,
            "patterns": [
                {"symbol": "AAPL", "pattern": "Doji", "confidence": 0.6},
                {"symbol": "AAPL;DROP", "pattern": "Doji", "confidence": 0.6},
                {"data": {"symbol": "MSFT", "pattern_name": "Hammer", "confidence": 75}},
                "not an object",
                {"symbol": "NVDA", "confidence": 0.6},
            ],
        }
    )
    assert [(e.symbol, e.data["pattern"], e.data["tier"]) for e in result.events] == [
        ("AAPL", "Doji", "hourly"),
        ("MSFT", "Hammer", "hourly"),
    ]
    assert result.events[1].data["confidence"] == 0.75
    # The batch id names the batch, so each event gets its own id.
    assert len({e.event_id for e in result.events}) == 2
    assert "batch-1" not in {e.event_id for e in result.events}
    assert [r.reason for r in result.rejects] == [
        "invalid_symbol",
        "not_an_object",
        "missing_pattern",
    ]
    assert "AAPL;DROP" in result.rejects[0].sample
    assert result.rejects[0].detail.startswith("item 1:")


def test_top_level_list_is_a_batch() -> None:
    result = run([INNER, {"test": "health_check"}, {**INNER, "symbol": "MSFT"}])
    assert [e.symbol for e in result.events] == ["AAPL", "MSFT"]
    assert not result.ignored and result.rejects == []
    assert run({"patterns": [{"test": 1}, {"type": "test"}]}).ignored


def test_data_list_is_a_batch() -> None:
    result = run({"data": [INNER, {"detection": {**INNER, "symbol": "TSLA"}}]}, STREAMING)
    assert [e.symbol for e in result.events] == ["AAPL", "TSLA"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"patterns": []}, "empty_batch"),
        ([], "empty_batch"),
        ({"patterns": [{"patterns": [INNER]}]}, "nested_batch"),
        ({"patterns": [{}] * 1001}, "batch_too_large"),
    ],
)
def test_batch_rejects(message: Any, expected: str) -> None:
    assert reason(message) == expected


def test_same_detection_on_two_channels_has_one_event_id() -> None:
    detection = {**BASE, "timeframe": "1min", "detected_at": EPOCH}
    streaming = one({"detection": detection}, STREAMING)
    detected = one(detection, DETECTED)
    assert streaming.event_id == detected.event_id
    assert streaming.data["channel"] != detected.data["channel"]
    # The same instant as ISO text or epoch milliseconds is still the same detection.
    iso = one({**detection, "detected_at": "2026-11-26T09:30:00-05:00"}, DETECTED)
    millis = one({**detection, "detected_at": int(EPOCH * 1000)}, STREAMING)
    assert iso.event_id == millis.event_id == streaming.event_id
    # A different detection is a different event.
    assert one({**detection, "pattern": "Doji"}, STREAMING).event_id != streaming.event_id
    assert one({**detection, "detected_at": EPOCH + 60}, STREAMING).event_id != streaming.event_id


def test_producer_event_id_wins_over_the_hash() -> None:
    first = one({**INNER, "event_id": "abc"}, STREAMING)
    second = one({**INNER, "event_id": "abc", "confidence": 0.5}, PATTERNS)
    assert first.event_id == second.event_id == "abc"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b"{not json", "invalid_json", id="invalid-json"),
        pytest.param(b"", "invalid_json", id="empty"),
        pytest.param(b"\xff\xfe{}", "invalid_json", id="not-utf8"),
        pytest.param(b'{"symbol": NaN}', "invalid_json", id="nan-literal"),
        pytest.param("\ud800", "invalid_json", id="lone-surrogate"),
        pytest.param(b"42", "not_an_object", id="number"),
        pytest.param(b'"AAPL"', "not_an_object", id="string"),
        pytest.param(b"null", "not_an_object", id="null"),
        pytest.param({"pattern": "Breakout", "confidence": 0.8}, "missing_symbol", id="no-symbol"),
        pytest.param({**INNER, "symbol": None}, "missing_symbol", id="null-symbol"),
        pytest.param({**INNER, "symbol": "AAPL;DROP"}, "invalid_symbol", id="sql-ish-symbol"),
        pytest.param({**INNER, "symbol": ""}, "invalid_symbol", id="empty-symbol"),
        pytest.param({**INNER, "symbol": "ABCDEFGHIJK"}, "invalid_symbol", id="11-chars"),
        pytest.param({**INNER, "symbol": ".AAPL"}, "invalid_symbol", id="leading-dot"),
        pytest.param({**INNER, "symbol": "ÄPPL"}, "invalid_symbol", id="non-ascii"),
        pytest.param({**INNER, "symbol": 123}, "invalid_symbol", id="numeric-symbol"),
        pytest.param({**INNER, "symbol": ["AAPL"]}, "invalid_symbol", id="list-symbol"),
        pytest.param({"symbol": "AAPL", "confidence": 0.8}, "missing_pattern", id="no-pattern"),
        pytest.param({**INNER, "pattern": "  "}, "missing_pattern", id="blank-pattern"),
        pytest.param({**INNER, "pattern": 7}, "invalid_field", id="numeric-pattern"),
        pytest.param({**INNER, "pattern": "x" * 101}, "invalid_field", id="long-pattern"),
        pytest.param({**INNER, "confidence": "high"}, "invalid_field", id="confidence-high"),
        pytest.param({**INNER, "confidence": 250}, "invalid_field", id="confidence-250"),
        pytest.param({**INNER, "confidence": True}, "invalid_field", id="confidence-true"),
        pytest.param({**INNER, "confidence": -0.1}, "invalid_field", id="confidence-negative"),
        pytest.param({**INNER, "confidence": "NaN"}, "invalid_field", id="confidence-nan-text"),
        pytest.param({**INNER, "confidence": 1e400}, "invalid_json", id="confidence-inf"),
        pytest.param(
            {"symbol": "AAPL", "pattern": "Doji"}, "missing_confidence", id="no-confidence"
        ),
        pytest.param({**BASE, "detected_at": 0}, "invalid_timestamp", id="epoch-zero"),
        pytest.param({**BASE, "detected_at": "yesterday"}, "invalid_timestamp", id="words"),
        pytest.param(
            {**BASE, "detected_at": "1989-12-31T23:59:59Z"}, "invalid_timestamp", id="1989"
        ),
        pytest.param(
            {**BASE, "detected_at": EPOCH + 2 * 86400}, "invalid_timestamp", id="two-days-ahead"
        ),
        pytest.param({**BASE, "detected_at": 1e300}, "invalid_timestamp", id="huge"),
        pytest.param({**BASE, "detected_at": True}, "invalid_timestamp", id="bool-timestamp"),
        pytest.param({**BASE, "detected_at": [EPOCH]}, "invalid_timestamp", id="list-timestamp"),
        pytest.param({**INNER, "expires_at": "2200-01-01"}, "invalid_timestamp", id="expiry-2200"),
        pytest.param({**INNER, "tier": "yearly"}, "invalid_field", id="unknown-tier"),
        pytest.param({**INNER, "tier": 5}, "invalid_field", id="numeric-tier"),
        pytest.param({**INNER, "timeframe": 5}, "invalid_field", id="numeric-timeframe"),
        pytest.param({**INNER, "price": -1}, "invalid_field", id="negative-price"),
        pytest.param({**INNER, "price": "cheap"}, "invalid_field", id="price-text"),
        pytest.param({**INNER, "levels": "180.5"}, "invalid_field", id="levels-text"),
        pytest.param({**INNER, "levels": [[180.5]]}, "invalid_field", id="levels-nested"),
        pytest.param({**INNER, "levels": [True]}, "invalid_field", id="levels-bool"),
        pytest.param({**INNER, "indicators": [65]}, "invalid_field", id="indicators-list"),
        pytest.param({**INNER, "metadata": "x"}, "invalid_field", id="metadata-text"),
        pytest.param({**INNER, "event_id": 1.5}, "invalid_field", id="event-id-float"),
        pytest.param({**INNER, "source": 5}, "invalid_field", id="source-number"),
    ],
)
def test_rejects_with_reason(raw: Any, expected: str) -> None:
    if expected == "invalid_json" and isinstance(raw, dict):
        raw = json.dumps(raw)  # stdlib writes 1e400 as Infinity, which is not JSON
    assert reason(raw) == expected


def test_too_large_is_rejected_without_parsing() -> None:
    big = b'{"symbol": "AAPL", "pad": "' + b"x" * MAX_MESSAGE_BYTES_DEFAULT + b'"}'
    assert reason(big) == "too_large"
    assert reason(b"[" * 100, max_bytes=10) == "too_large"  # invalid JSON, but never parsed
    assert reason("é" * 40, max_bytes=60) == "too_large"  # text is measured in UTF-8 bytes
    assert run(orjson.dumps(INNER), max_bytes=1024).events


def test_deep_metadata_is_rejected_rather_than_breaking_serialisation() -> None:
    deep: Any = 1
    for _ in range(100):
        deep = {"a": deep}
    assert reason({**INNER, "extra": deep}) == "invalid_field"
    assert reason(b'{"symbol": "A", "x": ' + b"[" * 1100 + b"]" * 1100 + b"}") == "invalid_json"


def test_symbol_re_rejects_a_trailing_newline_even_with_match() -> None:
    assert SYMBOL_RE.match("AAPL\n") is None
    assert SYMBOL_RE.match("BRK.B") and SYMBOL_RE.match("BF-B") and SYMBOL_RE.match("A" * 10)


def test_unknown_channel_is_rejected_and_channels_map_to_kinds() -> None:
    assert reason(INNER, "market.quotes") == "unknown_channel"
    assert {channel: channel_kind(channel) for channel in DEFAULT_CHANNELS} == {
        "tickstock.events.patterns": "pattern",
        "tickstock:patterns:streaming": "pattern",
        "tickstock:patterns:detected": "pattern",
        "tickstock.events.indicators": "indicator",
        "tickstock:indicators:streaming": "indicator",
        "tickstock:alerts:indicators": "alert",
        "tickstock:alerts:critical": "alert",
        "tickstock:streaming:health": "health",
        "tickstock:streaming:session_started": "session",
        "tickstock:streaming:session_stopped": "session",
        "tickstock.health.status": "health",
        "tickstock.events.backtesting.progress": "job",
        "tickstock.events.backtesting.results": "job",
        "tickstock.jobs.progress": "job",
    }
    assert channel_kind("staging:tickstock.events.patterns") == "pattern"
    assert channel_kind("staging:tickstock.events.backtesting.progress") == "job"
    assert channel_kind("x:alerts:indicators") == "alert"
    assert channel_kind("x.health") == "health"
    assert channel_kind("quotes") is None


# --- indicators -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "channel", "expected"),
    [
        pytest.param(
            {"symbol": "aapl", "indicator": "RSI", "value": 71.5, "timestamp": EPOCH},
            INDICATORS,
            {
                "indicator": "RSI",
                "value": 71.5,
                "values": {},
                "tier": "daily",
                "timeframe": "daily",
            },
            id="flat-value",
        ),
        pytest.param(
            {
                "calculation": {
                    "symbol": "AAPL",
                    "indicator_type": "MACD",
                    "values": {"macd": 1.2, "signal": 1, "histogram": None},
                    "timestamp": EPOCH,
                    "timeframe": "1min",
                }
            },
            "tickstock:indicators:streaming",
            {
                "indicator": "MACD",
                "value": None,
                "values": {"macd": 1.2, "signal": 1.0, "histogram": None},
                "tier": "intraday",
                "timeframe": "1min",
            },
            id="calculation-values",
        ),
        pytest.param(
            {"data": {"symbol": "AAPL", "indicator_name": "SMA20", "value": "185.1", "ts": EPOCH}},
            INDICATORS,
            {"indicator": "SMA20", "value": 185.1},
            id="data-indicator_name",
        ),
        pytest.param(
            {"symbol": "AAPL", "indicator": "BB", "value": {"upper": 1, "lower": 0}, "ts": EPOCH},
            INDICATORS,
            {"value": None, "values": {"upper": 1.0, "lower": 0.0}},
            id="value-object-is-values",
        ),
    ],
)
def test_indicator_shapes(message: dict[str, Any], channel: str, expected: dict[str, Any]) -> None:
    event = one(message, channel)
    assert (event.kind, event.event_type, event.symbol) == ("indicator", "indicator_update", "AAPL")
    for key, value in expected.items():
        assert event.data[key] == value, key
    assert set(event.data) == {
        "event_id",
        "symbol",
        "indicator",
        "value",
        "values",
        "tier",
        "timeframe",
        "calculated_at",
        "metadata",
        "source",
        "channel",
        "received_at",
    }
    assert event.data["calculated_at"] == "2026-11-26T14:30:00.000Z"


def test_indicator_batch_with_symbol_on_the_envelope() -> None:
    result = run(
        {
            "symbol": "NVDA",
            "timestamp": EPOCH,
            "indicators": [
                {"indicator": "RSI", "value": 55},
                {"indicator": "SMA20", "value": 120.5},
                {"indicator": "ATR"},
            ],
        },
        INDICATORS,
    )
    assert [(e.symbol, e.data["indicator"], e.data["value"]) for e in result.events] == [
        ("NVDA", "RSI", 55.0),
        ("NVDA", "SMA20", 120.5),
    ]
    assert [r.reason for r in result.rejects] == ["missing_value"]
    ids = {e.event_id for e in result.events}
    assert len(ids) == 2


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"symbol": "AAPL", "value": 50}, "missing_indicator"),
        ({"indicator": "RSI", "value": 50}, "missing_symbol"),
        ({"symbol": "AAPL", "indicator": "RSI"}, "missing_value"),
        ({"symbol": "AAPL", "indicator": "RSI", "value": "high"}, "invalid_field"),
        ({"symbol": "AAPL", "indicator": "MACD", "values": {"macd": "x"}}, "invalid_field"),
        ({"symbol": "AAPL", "indicator": "MACD", "values": [1, 2]}, "invalid_field"),
    ],
)
def test_indicator_rejects(message: dict[str, Any], expected: str) -> None:
    assert reason(message, INDICATORS) == expected


# --- alerts, health, sessions -------------------------------------------------------------------


def test_indicator_alert_needs_a_symbol_and_keeps_its_fields() -> None:
    event = one(
        {
            "alert_type": "RSI_OVERBOUGHT",
            "symbol": "aapl",
            "indicator": "RSI",
            "value": 78.2,
            "data": {"threshold": 70},
            "timestamp": EPOCH,
        },
        "tickstock:alerts:indicators",
    )
    assert (event.kind, event.event_type, event.symbol) == ("alert", "indicator_alert", "AAPL")
    assert event.data["alert_type"] == "RSI_OVERBOUGHT"
    assert event.data["severity"] == "warning"
    assert event.data["value"] == 78.2
    assert event.data["indicator"] == "RSI"
    assert event.data["metadata"] == {"data": {"threshold": 70}}
    assert event.data["detected_at"] == "2026-11-26T14:30:00.000Z"
    no_symbol = {"alert_type": "RSI_OVERBOUGHT", "value": 78.2}
    assert reason(no_symbol, "tickstock:alerts:indicators") == "missing_symbol"


def test_critical_alert_without_symbol() -> None:
    event = one(
        {"type": "data_feed_down", "message": "Feed lost", "timestamp": EPOCH},
        "tickstock:alerts:critical",
    )
    assert (event.kind, event.event_type, event.symbol) == ("alert", "critical_alert", None)
    assert event.data["alert_type"] == "data_feed_down"
    assert event.data["message"] == "Feed lost"
    assert event.data["severity"] == "critical"
    assert event.data["metadata"] == {}
    assert reason({"severity": "high"}, "tickstock:alerts:critical") == "missing_alert"
    wrapped = one(
        {"type": "critical_alert", "data": {"message": "Disk full"}}, "tickstock:alerts:critical"
    )
    assert wrapped.data["message"] == "Disk full" and wrapped.data["alert_type"] is None


def test_health_messages() -> None:
    nested = one(
        {
            "type": "streaming_health",
            "timestamp": EPOCH,
            "health": {"status": "healthy", "active_symbols": 42, "ticks_per_second": 12.5},
        },
        "tickstock:streaming:health",
    )
    assert (nested.kind, nested.event_type, nested.symbol) == ("health", "system_health", None)
    assert nested.data["status"] == "healthy"
    assert nested.data["timestamp"] == "2026-11-26T14:30:00.000Z"
    assert nested.data["metadata"] == {"active_symbols": 42, "ticks_per_second": 12.5}
    flat = one({"status": "degraded", "database": "slow"}, "tickstock.health.status")
    assert flat.data["status"] == "degraded"
    assert flat.data["timestamp"] == "2026-11-26T14:30:00.004Z"
    assert flat.event_id != nested.event_id


@pytest.mark.parametrize("channel", DEFAULT_CHANNELS)
@pytest.mark.parametrize(
    "message",
    [
        {"test": "health_check"},
        {"test": True, "timestamp": EPOCH},
        {"type": "test"},
        {"data": {"test": "health_check"}},
        {"type": "ping"},
    ],
)
def test_test_payloads_are_ignored_quietly(channel: str, message: dict[str, Any]) -> None:
    result = run(message, channel)
    assert result == NormaliseResult([], [], ignored=True)


def test_session_started_and_stopped() -> None:
    started = one(
        {
            "type": "streaming_session_started",
            "timestamp": EPOCH,
            "session": {"session_id": "s-1", "universe": "sp500", "symbol_count": 500},
        },
        "tickstock:streaming:session_started",
    )
    assert (started.kind, started.event_type, started.symbol) == (
        "session",
        "streaming_session",
        None,
    )
    assert started.data["status"] == "started"
    assert started.data["session_id"] == "s-1"
    assert started.data["metadata"] == {"universe": "sp500", "symbol_count": 500}
    stopped = one(
        {"session_id": "s-1", "final_status": "ok", "stopped_at": EPOCH + 3600},
        "tickstock:streaming:session_stopped",
    )
    assert stopped.data["status"] == "stopped"
    assert stopped.data["timestamp"] == "2026-11-26T15:30:00.000Z"
    assert stopped.event_id != started.event_id


def test_received_at_defaults_to_now_and_naive_is_utc() -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    event = normalise(orjson.dumps(BASE), PATTERNS).events[0]
    received = datetime.fromisoformat(event.data["received_at"])
    assert before <= received <= datetime.now(UTC)
    naive = normalise(orjson.dumps(BASE), PATTERNS, received_at=NOW.replace(tzinfo=None))
    assert naive.events[0].data["received_at"] == "2026-11-26T14:30:00.004Z"


def test_source_default_is_configurable() -> None:
    result = run({**INNER, "source": "hourly"}, source_default="PL-2")
    assert result.events[0].data["source"] == "PL-2"


# --- properties ---------------------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "symbol",
        "pattern",
        "pattern_type",
        "indicator",
        "confidence",
        "value",
        "values",
        "levels",
        "data",
        "detection",
        "payload",
        "patterns",
        "indicators",
        "timestamp",
        "detected_at",
        "tier",
        "source",
        "timeframe",
        "metadata",
        "event_id",
        "id",
        "status",
        "session",
        "health",
        "test",
        "type",
        "alert_type",
        "message",
    ]
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # Producer field names make the generator reach the envelope and alias code, not just rejects.
    return st.lists(children, max_size=5) | st.dictionaries(
        KEYS | st.text(max_size=8), children, max_size=6
    )


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    _containers,
    max_leaves=30,
)


def check(result: NormaliseResult) -> None:
    assert isinstance(result, NormaliseResult)
    for event in result.events:
        orjson.dumps(event.data)
        assert event.event_id == event.data["event_id"]
        assert event.symbol is None or SYMBOL_RE.fullmatch(event.symbol)
        if event.kind == "pattern":
            assert 0.0 <= event.data["confidence"] <= 1.0
    for reject in result.rejects:
        assert reject.reason != "internal_error", reject  # a bug in the normaliser, not the input
        assert reject.reason in REJECT_REASONS
        assert len(reject.detail) <= 205 and len(reject.sample) <= 200


@settings(max_examples=int(os.environ.get("EV_EXAMPLES", "300")), deadline=None)
@given(
    raw=st.binary(max_size=300) | st.text(max_size=300), channel=st.sampled_from(DEFAULT_CHANNELS)
)
def test_arbitrary_bytes_and_text_never_raise(raw: bytes | str, channel: str) -> None:
    check(normalise(raw, channel, received_at=NOW))


@settings(
    max_examples=int(os.environ.get("EV_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(value=JSON, channel=st.sampled_from(DEFAULT_CHANNELS))
def test_arbitrary_json_never_raises(value: Any, channel: str) -> None:
    check(normalise(json.dumps(value), channel, received_at=NOW))


valid_timestamps = st.one_of(
    st.floats(min_value=631_152_000, max_value=EPOCH),
    st.integers(min_value=631_152_000_000, max_value=int(EPOCH * 1000)),
    st.datetimes(
        min_value=datetime(1990, 1, 2),
        max_value=datetime(2026, 11, 25),
        timezones=st.sampled_from([None, UTC]),
    ).map(lambda moment: moment.isoformat()),
)


@settings(max_examples=int(os.environ.get("EV_EXAMPLES", "300")), deadline=None)
@given(
    symbol=st.from_regex(SYMBOL_RE, fullmatch=True),
    lower=st.booleans(),
    pattern=st.text(min_size=1, max_size=100).filter(lambda name: name.strip() != ""),
    confidence=st.floats(min_value=0, max_value=1) | st.floats(min_value=0, max_value=100),
    detected_at=valid_timestamps,
    placement=st.sampled_from(["tier", "source", "timeframe", None]),
    tier=st.sampled_from(TIERS),
    channel=st.sampled_from([PATTERNS, STREAMING, DETECTED]),
)
def test_valid_flat_patterns_always_normalise(
    symbol: str,
    lower: bool,
    pattern: str,
    confidence: float,
    detected_at: Any,
    placement: str | None,
    tier: str,
    channel: str,
) -> None:
    message: dict[str, Any] = {
        "symbol": f" {symbol.lower() if lower else symbol} ",
        "pattern": pattern,
        "confidence": confidence,
        "detected_at": detected_at,
    }
    if placement is not None:
        message[placement] = tier
    result = normalise(orjson.dumps(message), channel, received_at=NOW)
    assert result.rejects == []
    (event,) = result.events
    assert SYMBOL_RE.fullmatch(event.data["symbol"]) and event.symbol == symbol
    assert 0.0 <= event.data["confidence"] <= 1.0
    assert event.data["pattern"] == pattern.strip()
    assert ISO_MS.fullmatch(event.data["detected_at"])
    if placement in ("tier", "source"):
        assert event.data["tier"] == tier
    check(result)


SAMPLES = {
    PATTERNS: {
        **INNER,
        "tier": "daily",
        "price": 185.2,
        "levels": [180.5],
        "indicators": {"rsi": 65},
        "expires_at": EPOCH + 3600,
        "metadata": {"k": 1},
        "event_id": "e-1",
    },
    INDICATORS: {"symbol": "AAPL", "indicator": "RSI", "value": 55, "timestamp": EPOCH},
    "tickstock:alerts:indicators": {"symbol": "AAPL", "alert_type": "RSI", "value": 71},
    "tickstock:alerts:critical": {"type": "feed_down", "message": "lost", "severity": "critical"},
    "tickstock:streaming:health": {"status": "healthy", "timestamp": EPOCH},
    "tickstock:streaming:session_started": {"session_id": "s-1", "timestamp": EPOCH},
}


@settings(max_examples=int(os.environ.get("EV_EXAMPLES", "300")), deadline=None)
@given(
    channel=st.sampled_from(sorted(SAMPLES)),
    data=st.data(),
    replacement=JSON,
    envelope=st.sampled_from([None, "data", "detection", "calculation", "payload", "health"]),
)
def test_valid_messages_with_one_field_replaced_never_raise(
    channel: str, data: st.DataObject, replacement: Any, envelope: str | None
) -> None:
    message = dict(SAMPLES[channel])
    message[data.draw(st.sampled_from(sorted(message)) | KEYS)] = replacement
    wrapped = message if envelope is None else {"type": "event", envelope: message}
    check(normalise(json.dumps(wrapped), channel, received_at=NOW))
