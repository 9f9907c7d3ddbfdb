"""The product's vocabularies, each defined once: pattern tiers, timeframes, level types and the
producer's channels."""

from __future__ import annotations

import functools
import re
from typing import Final, Literal, get_args

__all__ = [
    "CHANNEL_KINDS",
    "DEFAULT_CHANNELS",
    "DEMO_SYMBOLS",
    "JOB_CHANNELS",
    "JOB_KINDS",
    "JOB_STATUSES",
    "LEVEL_TYPES",
    "PATTERNS_CHANNEL",
    "TIERS",
    "TIER_TIMEFRAMES",
    "TIMEFRAMES",
    "ChannelKind",
    "JobKind",
    "JobStatus",
    "Tier",
    "canonical_timeframe",
]

Tier = Literal["daily", "intraday", "hourly", "weekly", "monthly", "combo", "daily_intraday"]
"""A pattern tier: one producer table each, except combo (pattern_detections)."""

TIERS: Final[tuple[Tier, ...]] = get_args(Tier)
"""Every tier, in the order the API documents them."""

TIMEFRAMES: Final = ("1min", "5min", "15min", "30min", "hourly", "daily", "weekly", "monthly")
"""The bar interval of a detection, spelled one way everywhere (REST, live events, alerts, CSV).

Producers write the same interval several ways (``1d``, ``D``, ``60min``, ``1h``, ``1M``, ``1w``);
:func:`canonical_timeframe` maps each to these names. Other intervals keep a minute or hour count
(``2h``, ``240min``); a word tickstock does not know is kept, lower-cased."""

TIER_TIMEFRAMES: Final[dict[Tier, str]] = {
    "intraday": "1min",
    "hourly": "hourly",
    "daily": "daily",
    "weekly": "weekly",
    "monthly": "monthly",
    "daily_intraday": "5min",
    "combo": "daily",
}
"""The timeframe of a detection whose producer names none: the producer tables' column defaults
(pattern_detections, the combo tier, has no timeframe column: its detections are end of day)."""

LEVEL_TYPES: Final = ("support", "resistance", "level")
"""How a plain number in ``levels`` is typed: ``support`` at or below the detection's price,
``resistance`` above it, ``level`` when the detection has no price. Typed levels the producer
sends (``{"type": "target", "value": 190}``) keep their own type."""

_INTERVAL: Final = re.compile(r"(\d{1,4})\s*([A-Za-z]+)")
_WORDS: Final = {
    **dict.fromkeys(("d", "day", "days", "daily", "eod", "1day"), "daily"),
    **dict.fromkeys(("h", "hr", "hour", "hourly"), "hourly"),
    **dict.fromkeys(("w", "wk", "week", "weekly"), "weekly"),
    **dict.fromkeys(("mo", "mon", "month", "monthly"), "monthly"),
    **dict.fromkeys(("m", "min", "minute"), "1min"),
}
_MINUTE_UNITS: Final = frozenset(("m", "min", "mins", "minute", "minutes", "t"))
_HOUR_UNITS: Final = frozenset(("h", "hr", "hrs", "hour", "hours"))
_DAY_UNITS: Final = frozenset(("d", "day", "days"))
_WEEK_UNITS: Final = frozenset(("w", "wk", "wks", "week", "weeks"))
_MONTH_UNITS: Final = frozenset(("mo", "mon", "mth", "month", "months"))


@functools.lru_cache(maxsize=256)
def canonical_timeframe(text: str) -> str:
    """``1d``/``D``/``day`` -> ``daily``, ``60min``/``1h`` -> ``hourly``, ``1M`` -> ``monthly``,
    ``5m`` -> ``5min`` ...; anything else stripped and lower-cased (cached: producers use few)."""
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in TIMEFRAMES:
        return lowered
    if stripped == "M":  # exchange convention: 1m is a minute, 1M a month
        return "monthly"
    word = _WORDS.get(lowered)
    if word is not None:
        return word
    match = _INTERVAL.fullmatch(stripped)
    if match is None:
        return lowered
    count, unit = int(match[1]), match[2]
    if unit == "M":
        return "monthly" if count == 1 else f"{count}mo"
    unit = unit.lower()
    if unit in _MINUTE_UNITS:
        if count == 60:
            return "hourly"
        return f"{count}min"
    if unit in _HOUR_UNITS:
        return "hourly" if count == 1 else f"{count}h"
    if unit in _DAY_UNITS:
        return "daily" if count == 1 else f"{count}d"
    if unit in _WEEK_UNITS:
        return "weekly" if count == 1 else f"{count}w"
    if unit in _MONTH_UNITS:
        return "monthly" if count == 1 else f"{count}mo"
    return lowered


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
