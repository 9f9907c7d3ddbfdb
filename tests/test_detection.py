"""The one vocabulary of a detection: timeframes spelled one way, plain levels typed one way."""

from __future__ import annotations

import pytest

from tickstock.detection import plain_levels, priority
from tickstock.vocab import TIER_TIMEFRAMES, TIERS, TIMEFRAMES, canonical_timeframe


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("1d", "daily"),
        ("D", "daily"),
        ("day", "daily"),
        (" Daily ", "daily"),
        ("1w", "weekly"),
        ("1W", "weekly"),
        ("1M", "monthly"),
        ("1mo", "monthly"),
        ("60min", "hourly"),
        ("1h", "hourly"),
        ("hourly", "hourly"),
        ("1m", "1min"),
        ("5m", "5min"),
        ("15min", "15min"),
        ("2h", "2h"),
        ("240min", "240min"),
        ("3 candles", "3 candles"),
    ],
)
def test_every_spelling_of_an_interval_reads_one_way(spelling: str, canonical: str) -> None:
    assert canonical_timeframe(spelling) == canonical


def test_every_tier_has_a_default_timeframe_of_the_vocabulary() -> None:
    assert set(TIER_TIMEFRAMES) == set(TIERS)
    assert set(TIER_TIMEFRAMES.values()) <= set(TIMEFRAMES)


def test_plain_levels_are_typed_against_the_price() -> None:
    assert plain_levels([180.5, 185.2, 190.0, None], 185.2) == [
        {"type": "support", "value": 180.5},
        {"type": "support", "value": 185.2},
        {"type": "resistance", "value": 190.0},
    ]
    assert plain_levels([180.5], None) == [{"type": "level", "value": 180.5}]


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [(0.95, "CRITICAL"), (0.9, "CRITICAL"), (0.85, "HIGH"), (0.7, "MEDIUM"), (0.69, "LOW")],
)
def test_priority_follows_the_confidence(confidence: float, expected: str) -> None:
    assert priority(confidence) == expected
