"""The product's vocabularies, each defined once: pattern tiers and the producer's channels."""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "CHANNEL_KINDS",
    "DEFAULT_CHANNELS",
    "DEMO_SYMBOLS",
    "JOB_CHANNELS",
    "JOB_KINDS",
    "JOB_STATUSES",
    "PATTERNS_CHANNEL",
    "TIERS",
    "ChannelKind",
    "JobKind",
    "JobStatus",
    "Tier",
]

Tier = Literal["daily", "intraday", "hourly", "weekly", "monthly", "combo", "daily_intraday"]
"""A pattern tier: one producer table each, except combo (pattern_detections)."""

TIERS: Final[tuple[Tier, ...]] = get_args(Tier)
"""Every tier, in the order the API documents them."""

ChannelKind = Literal["pattern", "indicator", "alert", "health", "session", "job"]

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
# The producer's reports on the jobs tickstock hands it (SPEC §13).
BACKTEST_PROGRESS_CHANNEL: Final = "tickstock.events.backtesting.progress"
BACKTEST_RESULTS_CHANNEL: Final = "tickstock.events.backtesting.results"
JOB_PROGRESS_CHANNEL: Final = "tickstock.jobs.progress"

# tickstock -> producer: the jobs it is asked to run, and cancellations (SPEC §13).
JOB_BACKTEST_CHANNEL: Final = "tickstock.jobs.backtest"
JOB_DATA_LOAD_CHANNEL: Final = "tickstock.jobs.data_load"
JOB_CANCEL_CHANNEL: Final = "tickstock.jobs.cancel"

JobKind = Literal["backtest", "data_load"]
JOB_KINDS: Final[tuple[JobKind, ...]] = get_args(JobKind)
JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
JOB_STATUSES: Final[tuple[JobStatus, ...]] = get_args(JobStatus)
ACTIVE_JOB_STATUSES: Final[tuple[JobStatus, ...]] = ("queued", "running")

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
    BACKTEST_PROGRESS_CHANNEL: "job",
    BACKTEST_RESULTS_CHANNEL: "job",
    JOB_PROGRESS_CHANNEL: "job",
}
JOB_CHANNELS: Final = frozenset(channel for channel, kind in CHANNEL_KINDS.items() if kind == "job")
"""The channels ingest hands to the job updater (realtime/jobs.py) instead of the event path."""
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
