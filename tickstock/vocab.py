"""The product's vocabularies, each defined once: pattern tiers and the producer's channels."""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = ["CHANNEL_KINDS", "DEFAULT_CHANNELS", "TIERS", "ChannelKind", "Tier"]

Tier = Literal["daily", "intraday", "hourly", "weekly", "monthly", "combo", "daily_intraday"]
"""A pattern tier: one producer table each, except combo (pattern_detections)."""

TIERS: Final[tuple[Tier, ...]] = get_args(Tier)
"""Every tier, in the order the API documents them."""

ChannelKind = Literal["pattern", "indicator", "alert", "health", "session"]

# The producer's Redis channels (SPEC §2) and the kind of event each carries.
CHANNEL_KINDS: Final[dict[str, ChannelKind]] = {
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
}
DEFAULT_CHANNELS: Final[tuple[str, ...]] = tuple(CHANNEL_KINDS)
"""The channels ingest subscribes to unless TICKSTOCK_INGEST_CHANNELS says otherwise."""
