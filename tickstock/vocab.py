"""The product's vocabularies, each defined once: pattern tiers and the producer's channels."""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "CHANNEL_KINDS",
    "DEFAULT_CHANNELS",
    "DEMO_SYMBOLS",
    "PATTERNS_CHANNEL",
    "TIERS",
    "ChannelKind",
    "Tier",
]

Tier = Literal["daily", "intraday", "hourly", "weekly", "monthly", "combo", "daily_intraday"]
"""A pattern tier: one producer table each, except combo (pattern_detections)."""

TIERS: Final[tuple[Tier, ...]] = get_args(Tier)
"""Every tier, in the order the API documents them."""

ChannelKind = Literal["pattern", "indicator", "alert", "health", "session"]

# The producer's Redis channels (SPEC §2).
PATTERNS_CHANNEL: Final = "tickstock.events.patterns"
PATTERNS_STREAMING_CHANNEL: Final = "tickstock:patterns:streaming"
PATTERNS_DETECTED_CHANNEL: Final = "tickstock:patterns:detected"
INDICATORS_CHANNEL: Final = "tickstock.events.indicators"
INDICATORS_STREAMING_CHANNEL: Final = "tickstock:indicators:streaming"
INDICATOR_ALERTS_CHANNEL: Final = "tickstock:alerts:indicators"
CRITICAL_ALERTS_CHANNEL: Final = "tickstock:alerts:critical"
STREAMING_HEALTH_CHANNEL: Final = "tickstock:streaming:health"
SESSION_STARTED_CHANNEL: Final = "tickstock:streaming:session_started"
SESSION_STOPPED_CHANNEL: Final = "tickstock:streaming:session_stopped"
HEALTH_STATUS_CHANNEL: Final = "tickstock.health.status"

# The kind of event each channel carries.
CHANNEL_KINDS: Final[dict[str, ChannelKind]] = {
    PATTERNS_CHANNEL: "pattern",
    PATTERNS_STREAMING_CHANNEL: "pattern",
    PATTERNS_DETECTED_CHANNEL: "pattern",
    INDICATORS_CHANNEL: "indicator",
    INDICATORS_STREAMING_CHANNEL: "indicator",
    INDICATOR_ALERTS_CHANNEL: "alert",
    CRITICAL_ALERTS_CHANNEL: "alert",
    STREAMING_HEALTH_CHANNEL: "health",
    SESSION_STARTED_CHANNEL: "session",
    SESSION_STOPPED_CHANNEL: "session",
    HEALTH_STATUS_CHANNEL: "health",
}
DEFAULT_CHANNELS: Final[tuple[str, ...]] = tuple(CHANNEL_KINDS)
"""The channels ingest subscribes to unless TICKSTOCK_INGEST_CHANNELS says otherwise."""

DEMO_SYMBOLS: Final[tuple[str, ...]] = (
    "AAPL",
    "MSFT",
    "NVDA",
    "AMZN",
    "GOOGL",
    "META",
    "TSLA",
    "BRK.B",
    "JPM",
    "V",
    "XOM",
    "UNH",
    "AMD",
    "NFLX",
    "BF-B",
    "SPY",
)
"""The symbols the demo producer publishes: the demo login's first watchlist, and the names the
dashboard's empty states suggest."""
