"""Normalise producer messages from Redis into tickstock events (SPEC §2).

Pure code, no I/O. :func:`normalise` accepts every envelope, field alias and timestamp shape the
producer has used, validates the result against pydantic schemas and returns events plus precise
rejects. It never raises, so one bad message can never stop the ingest loop.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, cast

import orjson
from pydantic import (
    AfterValidator,
    BeforeValidator,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from tickstock.detection import Detection, Level, level_type
from tickstock.vocab import (
    CHANNEL_KINDS,
    DEFAULT_CHANNELS,
    TIER_TIMEFRAMES,
    TIERS,
    Tier,
    canonical_timeframe,
)

__all__ = [
    "CHANNEL_KINDS",
    "DEFAULT_CHANNELS",
    "JOB_MESSAGE_MAX_BYTES",
    "MAX_MESSAGE_BYTES_DEFAULT",
    "REJECT_REASONS",
    "SYMBOL_RE",
    "TIERS",
    "Event",
    "JobResults",
    "JobTrade",
    "JobUpdate",
    "LiveDetection",
    "NormaliseResult",
    "Reject",
    "channel_kind",
    "is_job_channel",
    "normalise",
]

MAX_MESSAGE_BYTES_DEFAULT: Final = 65536
# SPEC §6 symbols, matched after strip + upper. \Z, not $: "$" would also accept a trailing "\n"
# for callers using .match().
SYMBOL_RE: Final = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,9}\Z")

# Every Reject.reason normalise can return (stable: metrics are labelled with them).
REJECT_REASONS: Final = (
    "too_large",
    "unknown_channel",
    "invalid_json",
    "not_an_object",
    "empty_batch",
    "batch_too_large",
    "nested_batch",
    "missing_symbol",
    "invalid_symbol",
    "missing_pattern",
    "missing_indicator",
    "missing_confidence",
    "missing_value",
    "missing_alert",
    "missing_field",
    "invalid_field",
    "invalid_timestamp",
    "internal_error",
)

# Timestamps outside [1990-01-01, now + 1 day] are producer bugs (unit mix-ups, zero values), not
# detections; expiries may lie far ahead but not past 2100.
MIN_TIMESTAMP: Final = 631_152_000.0
MAX_FUTURE_SKEW: Final = 86_400.0
MAX_EXPIRY_TIMESTAMP: Final = 4_102_444_800.0
MAX_BATCH_ITEMS: Final = 1000
MAX_NESTING: Final = 16  # metadata deeper than this could not be re-serialised safely downstream

_SAMPLE_CHARS: Final = 200
_DETAIL_CHARS: Final = 200
_MAX_ENVELOPE_DEPTH: Final = 5
_TIER_SET: Final = frozenset(TIERS)
_TIMEFRAME_SPELLINGS: Final[dict[str, str]] = {}
_TIER_TIMEFRAMES: Final[dict[str, str]] = {str(k): v for k, v in TIER_TIMEFRAMES.items()}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE: Final = datetime(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Event:
    """One normalised event, ready for dedupe, history and fan-out.

    ``data`` is the JSON-serialisable payload of SPEC §2 without ``offset``.
    """

    kind: str
    event_type: str
    symbol: str | None
    event_id: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reject:
    """A message (or batch item) that could not be normalised, and why."""

    reason: str
    detail: str
    sample: str


@dataclass(frozen=True, slots=True)
class NormaliseResult:
    """Events and rejects from one Redis message; ``ignored`` marks quiet test payloads."""

    events: list[Event]
    rejects: list[Reject]
    ignored: bool = False


class _Ignored(Exception):
    """A batch item that is a test payload: skipped quietly."""


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class _Context:
    channel: str
    event_type: str
    default_tier: str
    received_at: float
    received_iso: str
    source_default: str
    validation: dict[str, Any]


# --- field aliases ------------------------------------------------------------------------------

_SYMBOL: Final = ("symbol", "ticker")
_PATTERN_NAME: Final = ("pattern", "pattern_type", "pattern_name")
_INDICATOR_NAME: Final = ("indicator", "indicator_type", "indicator_name")
_ID: Final = ("event_id", "id")
_CONFIDENCE: Final = ("confidence", "confidence_score")
_DETECTED: Final = (
    "detected_at",
    "detection_timestamp",
    "detection_time",
    "timestamp",
    "time",
    "ts",
)
_CALCULATED: Final = ("calculated_at", "calculation_timestamp", "timestamp", "time", "ts")
_EXPIRES: Final = ("expires_at", "expiration", "expiration_timestamp", "expiration_date", "expiry")
_PRICE: Final = ("price", "current_price", "price_at_detection")
_TIMEFRAME: Final = ("timeframe", "interval")
_VALUES: Final = ("values", "value_data")
_MESSAGE: Final = ("message", "msg", "description")
_ALERT_TIME: Final = ("detected_at", "triggered_at", "timestamp", "time", "ts")
_HEALTH_TIME: Final = ("timestamp", "time", "ts", "reported_at", "checked_at")
_SESSION_TIME: Final = (
    "timestamp",
    "started_at",
    "stopped_at",
    "start_time",
    "stop_time",
    "time",
    "ts",
)

_COMMON_KEYS: Final = frozenset(
    {*_SYMBOL, *_ID, "source", "tier", *_TIMEFRAME, "metadata", "channel", "received_at"}
)
_KNOWN_KEYS: Final[dict[str, frozenset[str]]] = {
    "pattern": _COMMON_KEYS
    | {*_PATTERN_NAME, *_CONFIDENCE, *_DETECTED, *_EXPIRES, *_PRICE, "levels", "indicators"},
    "indicator": _COMMON_KEYS | {*_INDICATOR_NAME, *_CALCULATED, "value", *_VALUES},
    "alert": _COMMON_KEYS
    | {"alert_type", "alert", *_MESSAGE, "severity", "value", *_INDICATOR_NAME, *_ALERT_TIME},
    "health": _COMMON_KEYS | {"status", *_HEALTH_TIME},
    "session": _COMMON_KEYS | {"session_id", *_SESSION_TIME},
    "job": frozenset({"job_id", "jobId", "status", "progress", "results", "error", "timestamp"}),
}
# Keys whose presence says "this dict is the event itself", so a nested "data" is a detail field.
_EVENT_KEYS: Final[dict[str, frozenset[str]]] = {
    "pattern": frozenset({*_SYMBOL, *_PATTERN_NAME}),
    "indicator": frozenset({*_SYMBOL, *_INDICATOR_NAME}),
    "alert": frozenset({*_SYMBOL, "alert_type", *_MESSAGE, "severity"}),
    "health": frozenset({"status"}),
    "session": frozenset({"session_id", "status"}),
    "job": frozenset({"job_id", "jobId"}),
}
_ENVELOPE_KEYS: Final = tuple(
    [
        "data",
        "payload",
        "detection",
        "calculation",
        "pattern_data",
        "indicator_data",
        "health",
        "session",
        "alert",
    ]
)
_BATCH_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "pattern": ("patterns", "detections", "events"),
    "indicator": ("indicators", "calculations", "events"),
    "alert": ("alerts", "events"),
    "health": (),
    "session": (),
    "job": (),
}
_WRAPPER_KEYS: Final = frozenset(_ENVELOPE_KEYS).union(*_BATCH_KEYS.values())
# Envelope "type" / "event_type" values that only name the message kind: not worth keeping.
_GENERIC_TYPES: Final = frozenset(
    [
        "pattern",
        "patterns",
        "pattern_detected",
        "pattern_detection",
        "pattern_batch",
        "streaming_pattern",
        "indicator",
        "indicators",
        "indicator_update",
        "indicator_calculation",
        "indicator_batch",
        "streaming_indicator",
        "alert",
        "indicator_alert",
        "critical_alert",
        "health",
        "system_health",
        "streaming_health",
        "health_status",
        "session",
        "streaming_session",
        "streaming_session_started",
        "streaming_session_stopped",
        "session_started",
        "session_stopped",
        "batch",
        "event",
    ]
)
_IGNORED_TYPES: Final = frozenset({"test", "ping", "health_check"})

_MISSING_REASONS: Final = {
    "symbol": "missing_symbol",
    "pattern": "missing_pattern",
    "indicator": "missing_indicator",
    "confidence": "missing_confidence",
}
_OWN_REASONS: Final = frozenset(
    {"invalid_symbol", "missing_pattern", "missing_indicator", "invalid_field", "invalid_timestamp"}
)
_TIMESTAMP_FIELDS: Final = frozenset({"detected_at", "calculated_at", "expires_at", "timestamp"})


# --- small helpers ------------------------------------------------------------------------------

_NUMERIC_RE: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TIMEFRAME_RE: Final = re.compile(r"(\d{1,4})\s*([A-Za-z]+)")
_TIMEFRAME_WORDS: Final = {
    "tick": "intraday",
    "ticks": "intraday",
    "realtime": "intraday",
    "streaming": "intraday",
    "minute": "intraday",
    "min": "intraday",
    "m": "intraday",
    "hour": "hourly",
    "h": "hourly",
    "day": "daily",
    "d": "daily",
    "eod": "daily",
    "week": "weekly",
    "w": "weekly",
    "month": "monthly",
    "mo": "monthly",
}
_UNIT_TIERS: Final = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "seconds"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes", "t"), "minutes"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hours"),
    **dict.fromkeys(("d", "day", "days"), "daily"),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), "weekly"),
    **dict.fromkeys(("mo", "mon", "mth", "month", "months"), "monthly"),
}


def _err(reason: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(reason, message)


def _clip(text: str, limit: int = _DETAIL_CHARS) -> str:
    # Samples and details go to logs and a PostgreSQL text column: no NULs, no lone surrogates.
    text = text[:limit].replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8")


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # deeply nested input can exhaust repr's recursion budget
        return f"<{type(value).__name__}>"
    return text if len(text) <= 40 else text[:37] + "..."


def _number(value: Any) -> float | None:
    """A finite float from an int, float or numeric string; None otherwise (bool is no number)."""
    kind = type(value)
    if kind is float:
        number = cast(float, value)
    elif kind is int:
        try:
            number = float(value)
        except OverflowError:
            return None
    elif kind is str:
        text = cast(str, value).strip()
        if len(text) > 64 or _NUMERIC_RE.fullmatch(text) is None:
            return None
        number = float(text)
    else:
        return None
    return number if math.isfinite(number) else None


def _pick(data: dict[str, Any], aliases: tuple[str, ...]) -> Any:
    for alias in aliases:
        value = data.get(alias)
        if value is not None:
            return value
    return None


@functools.lru_cache(maxsize=4096)
def _second_prefix(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def _iso(epoch: float) -> str:
    """ISO-8601 UTC with millisecond precision and a ``Z`` suffix, e.g. 2026-11-26T14:30:00.000Z."""
    # Round to the microsecond first (as datetime does), then truncate to the millisecond, so an
    # epoch float and the ISO string of the same instant give the same text, hence the same id.
    second, milli = divmod(round(epoch * 1_000_000) // 1000, 1000)
    return f"{_second_prefix(second)}.{milli:03d}Z"


def _datetime_epoch(moment: datetime) -> float:
    """Seconds since the epoch; naive datetimes are UTC (cheaper than replace(tzinfo=...))."""
    if moment.tzinfo is None:
        return (moment - _EPOCH_NAIVE).total_seconds()
    return (moment - _EPOCH).total_seconds()


def _event_hash(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()


def _too_deep(value: Any, budget: int) -> bool:
    if budget <= 0:
        return True
    for item in value.values() if isinstance(value, dict) else value:
        if isinstance(item, dict | list) and _too_deep(item, budget - 1):
            return True
    return False


@functools.lru_cache(maxsize=256)
def _timeframe_tier(timeframe: str) -> str | None:
    """Map a producer timeframe (``1min``, ``1h``, ``daily``, ``1M`` ...) to a tier."""
    text = timeframe.strip()
    lowered = text.lower()
    if lowered in _TIER_SET:
        return lowered
    if lowered in ("hourly", "weekly", "monthly"):
        return lowered
    word = _TIMEFRAME_WORDS.get(lowered)
    if word is not None:
        return word
    match = _TIMEFRAME_RE.fullmatch(text)
    if match is None:
        return None
    count, unit = int(match[1]), match[2]
    if unit == "M":  # exchange convention: 1m is a minute, 1M a month
        return "monthly"
    span = _UNIT_TIERS.get(unit.lower())
    if span == "seconds":
        return "intraday"
    if span == "minutes":
        return "intraday" if count < 60 else "hourly" if count < 1440 else "daily"
    if span == "hours":
        return "hourly" if count < 24 else "daily"
    return span


@functools.lru_cache(maxsize=256)
def channel_kind(channel: str) -> str | None:
    """The event kind a channel carries: pattern, indicator, alert, health, session or None.

    Known channels come from SPEC §2; other names are classified by the keywords they contain.
    """
    kind = CHANNEL_KINDS.get(channel)
    if kind is not None:
        return kind
    name = channel.lower()
    for keyword, inferred in (
        ("session", "session"),
        ("health", "health"),
        ("alert", "alert"),
        ("indicator", "indicator"),
        ("pattern", "pattern"),
        ("backtest", "job"),
        ("job", "job"),
    ):
        if keyword in name:
            return inferred
    return None


@functools.lru_cache(maxsize=256)
def is_job_channel(channel: str) -> bool:
    """Whether a channel carries the producer's job reports (SPEC §13), which ingest hands to the
    job updater instead of the event path."""
    return channel_kind(channel) == "job"


@functools.lru_cache(maxsize=256)
def _channel_profile(channel: str) -> tuple[str, str, str] | None:
    """(kind, Socket.IO event type, default tier) for a channel, or None when unknown."""
    kind = channel_kind(channel)
    if kind is None:
        return None
    name = channel.lower()
    if kind == "alert":
        event_type = "critical_alert" if "critical" in name else "indicator_alert"
    elif kind == "job":
        event_type = "job_results" if "result" in name else "job_progress"
    else:
        event_type = {
            "pattern": "pattern_detected",
            "indicator": "indicator_update",
            "health": "system_health",
            "session": "streaming_session",
        }[kind]
    # The colon-named channels carry the intraday streaming feed; the dotted ones the daily batch.
    tier = "intraday" if "streaming" in name or "detected" in name else "daily"
    return kind, event_type, tier


# --- schema validators --------------------------------------------------------------------------


def _v_event_id(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is int:
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 128:
            raise _err("invalid_field", "event_id longer than 128 characters")
        return text or None
    raise _err("invalid_field", f"event_id must be a string or integer, got {type(value).__name__}")


def _v_symbol(value: Any) -> str:
    if not isinstance(value, str):
        raise _err("invalid_symbol", f"symbol must be a string, got {type(value).__name__}")
    symbol = value.strip().upper()
    if SYMBOL_RE.fullmatch(symbol) is None:
        raise _err(
            "invalid_symbol",
            f"symbol {_short(value)} does not match ^[A-Z0-9][A-Z0-9.-]{{0,9}}$",
        )
    return symbol


def _v_optional_symbol(value: Any) -> str | None:
    return None if value is None else _v_symbol(value)


def _name_validator(field: str, missing: str) -> BeforeValidator:
    def validate(value: Any) -> str:
        if not isinstance(value, str):
            raise _err("invalid_field", f"{field} must be a string, got {type(value).__name__}")
        name = value.strip()
        if not name:
            raise _err(missing, f"{field} is empty")
        if len(name) > 100:
            raise _err("invalid_field", f"{field} longer than 100 characters")
        return name

    return BeforeValidator(validate)


def _text_validator(field: str, max_length: int) -> BeforeValidator:
    def validate(value: Any) -> str | None:
        if value is None:
            return None
        if type(value) is int:
            return str(value)
        if not isinstance(value, str):
            raise _err("invalid_field", f"{field} must be a string, got {type(value).__name__}")
        text = value.strip()
        if len(text) > max_length:
            raise _err("invalid_field", f"{field} longer than {max_length} characters")
        return text or None

    return BeforeValidator(validate)


def _v_confidence(value: Any) -> float:
    number = _number(value)
    if number is None or not 0.0 <= number <= 100.0:
        raise _err(
            "invalid_field", f"confidence must be a number in 0..1 or 0..100, got {_short(value)}"
        )
    # A percentage: 87.3 reads as 0.873, not the float division's 0.8729999999999999.
    return round(number / 100.0, 12) if number > 1.0 else number


def _number_validator(field: str, *, minimum: float | None = None) -> BeforeValidator:
    def validate(value: Any) -> float | None:
        if value is None:
            return None
        number = _number(value)
        if number is None or (minimum is not None and number < minimum):
            raise _err("invalid_field", f"{field} must be a finite number, got {_short(value)}")
        return number

    return BeforeValidator(validate)


def _v_levels(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, dict):  # {"support": 180.5, "resistance": [190, 195]}
        value = [
            {"type": kind, "value": item}
            for kind, level in value.items()
            for item in (level if isinstance(level, list) else [level])
        ]
    if not isinstance(value, list) or len(value) > 100:
        raise _err("invalid_field", "levels must be a list of at most 100 numbers or objects")
    levels: list[dict[str, Any]] = []
    for item in value:
        if isinstance(item, dict):
            kind = _pick(item, ("type", "kind", "name", "label"))
            number = _number(_pick(item, ("value", "price", "level")))
            kind = "level" if kind is None else kind
        else:
            kind, number = "level", _number(item)
        if number is None or not isinstance(kind, str) or not 0 < len(kind) <= 32:
            raise _err(
                "invalid_field", f"levels item {_short(item)} is not a number or a typed level"
            )
        levels.append({"type": kind, "value": number})
    return levels


def _v_number_map(field: str) -> BeforeValidator:
    def validate(value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict) or len(value) > 64:
            raise _err("invalid_field", f"{field} must be an object of at most 64 numbers")
        numbers: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                numbers[key] = None
                continue
            number = _number(item)
            if number is None:
                raise _err(
                    "invalid_field", f"{field}.{key[:40]} must be a number, got {_short(item)}"
                )
            numbers[key] = number
        return numbers

    return BeforeValidator(validate)


def _v_indicators(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _err("invalid_field", f"indicators must be an object, got {type(value).__name__}")
    # Numbers become floats so 65 and 65.0 read the same; anything else is kept as sent.
    return {key: float(item) if type(item) is int else item for key, item in value.items()}


def _v_nesting(value: dict[str, Any]) -> dict[str, Any]:
    if value and _too_deep(value, MAX_NESTING):
        raise _err("invalid_field", f"nested more than {MAX_NESTING} levels deep")
    return value


def _epoch(value: Any, field: str) -> float:
    """Seconds since the epoch from any accepted timestamp shape (range not checked)."""
    if isinstance(value, datetime):
        return _datetime_epoch(value)
    number = _number(value)
    if number is not None:
        magnitude = abs(number)
        # Producers send seconds, milliseconds and occasionally finer units.
        if magnitude >= 1e17:
            return number / 1e9
        if magnitude >= 1e14:
            return number / 1e6
        if magnitude >= 1e11:
            return number / 1e3
        return number
    if isinstance(value, str) and len(value) <= 64:
        try:
            return _datetime_epoch(datetime.fromisoformat(value.strip()))
        except (ValueError, OverflowError, OSError):
            pass
    raise _err(
        "invalid_timestamp",
        f"{field} must be epoch seconds/milliseconds or ISO-8601, got {_short(value)}",
    )


def _timestamp_validator(field: str, *, expiry: bool = False) -> BeforeValidator:
    def validate(value: Any, info: ValidationInfo) -> str | None:
        if value is None and expiry:
            return None
        epoch = _epoch(value, field)
        if expiry:
            upper = MAX_EXPIRY_TIMESTAMP
        else:
            upper = (info.context or {}).get("now", time.time()) + MAX_FUTURE_SKEW
        if not MIN_TIMESTAMP <= epoch <= upper:
            raise _err("invalid_timestamp", f"{field} {_short(value)} is out of range")
        return _iso(epoch)

    return BeforeValidator(validate)


EventId = Annotated[str | None, BeforeValidator(_v_event_id)]
Symbol = Annotated[str, BeforeValidator(_v_symbol)]
OptionalSymbol = Annotated[str | None, BeforeValidator(_v_optional_symbol)]
Confidence = Annotated[float, BeforeValidator(_v_confidence)]
Timeframe = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Source = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Metadata = Annotated[dict[str, Any], AfterValidator(_v_nesting)]


class PatternData(TypedDict):
    """What a pattern message is validated against: :class:`LiveDetection` without
    ``priority`` (derived from the confidence after), each field with its coercion."""

    event_id: EventId
    symbol: Symbol
    pattern: Annotated[str, _name_validator("pattern", "missing_pattern")]
    confidence: Confidence
    tier: Tier
    timeframe: Timeframe
    detected_at: Annotated[str, _timestamp_validator("detected_at")]
    expires_at: Annotated[str | None, _timestamp_validator("expires_at", expiry=True)]
    price: Annotated[float | None, _number_validator("price", minimum=0.0)]
    levels: Annotated[list[Level], BeforeValidator(_v_levels)]
    indicators: Annotated[
        dict[str, Any], BeforeValidator(_v_indicators), AfterValidator(_v_nesting)
    ]
    metadata: Metadata
    source: Source
    channel: str
    received_at: str


class IndicatorData(TypedDict):
    """``data`` of an ``indicator_update`` event: a single ``value`` or a ``values`` object."""

    event_id: EventId
    symbol: Symbol
    indicator: Annotated[str, _name_validator("indicator", "missing_indicator")]
    value: Annotated[float | None, _number_validator("value")]
    values: Annotated[dict[str, float | None], _v_number_map("values")]
    tier: Tier
    timeframe: Timeframe
    calculated_at: Annotated[str, _timestamp_validator("calculated_at")]
    metadata: Metadata
    source: Source
    channel: str
    received_at: str


class AlertData(TypedDict):
    """``data`` of an ``indicator_alert`` or ``critical_alert`` event."""

    event_id: EventId
    symbol: OptionalSymbol
    alert_type: Annotated[str | None, _text_validator("alert_type", 100)]
    message: Annotated[str | None, _text_validator("message", 1000)]
    severity: Annotated[str, _text_validator("severity", 32)]
    indicator: Annotated[str | None, _text_validator("indicator", 100)]
    value: Annotated[float | None, _number_validator("value")]
    detected_at: Annotated[str, _timestamp_validator("detected_at")]
    metadata: Metadata
    source: Source
    channel: str
    received_at: str


class HealthData(TypedDict):
    """``data`` of a ``system_health`` event; producer figures live in ``metadata``."""

    event_id: EventId
    status: Annotated[str, _text_validator("status", 64)]
    timestamp: Annotated[str, _timestamp_validator("timestamp")]
    metadata: Metadata
    source: Source
    channel: str
    received_at: str


class SessionData(TypedDict):
    """``data`` of a ``streaming_session`` event: ``status`` is started or stopped."""

    event_id: EventId
    status: Annotated[str, _text_validator("status", 64)]
    session_id: Annotated[str | None, _text_validator("session_id", 128)]
    timestamp: Annotated[str, _timestamp_validator("timestamp")]
    metadata: Metadata
    source: Source
    channel: str
    received_at: str


class LiveDetection(Detection):
    """``data`` of a ``pattern_detected`` event: the detection (:class:`Detection`, as REST rows
    carry it) and where it came from. ``offset`` is added by the history step."""

    event_id: str
    metadata: dict[str, Any]
    source: str
    channel: str
    received_at: str


_PATTERN_SCHEMA: Final = TypeAdapter(PatternData)
_INDICATOR_SCHEMA: Final = TypeAdapter(IndicatorData)
_ALERT_SCHEMA: Final = TypeAdapter(AlertData)
_HEALTH_SCHEMA: Final = TypeAdapter(HealthData)
_SESSION_SCHEMA: Final = TypeAdapter(SessionData)


def _validate(schema: TypeAdapter[Any], candidate: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    try:
        return cast(dict[str, Any], schema.validate_python(candidate, context=ctx.validation))
    except ValidationError as exc:
        raise _rejected_from(exc) from None


def _rejected_from(exc: ValidationError) -> _Rejected:
    errors = exc.errors(include_url=False, include_context=False)
    first = errors[0]
    loc = first["loc"]
    field = str(loc[0]) if loc else ""
    kind = first["type"]
    if kind in _OWN_REASONS:
        reason, detail = kind, first["msg"]
    elif kind == "missing":
        reason, detail = _MISSING_REASONS.get(field, "missing_field"), f"{field} is required"
    else:
        if field == "symbol":
            reason = "invalid_symbol"
        elif field in _TIMESTAMP_FIELDS:
            reason = "invalid_timestamp"
        else:
            reason = "invalid_field"
        where = ".".join(str(part)[:40] for part in loc) or "event"
        detail = f"{where}: {first['msg']} (got {_short(first.get('input'))})"
    if len(errors) > 1:
        detail = f"{detail} (+{len(errors) - 1} more)"
    return _Rejected(reason, _clip(detail))


# --- envelope handling --------------------------------------------------------------------------


def _without(data: dict[str, Any], key: str, base: dict[str, Any] | None) -> dict[str, Any]:
    rest = {name: value for name, value in data.items() if name != key}
    return rest if base is None else {**base, **rest}


def _unwrap(obj: dict[str, Any], kind: str) -> tuple[list[Any] | None, dict[str, Any]]:
    """Peel envelopes off ``obj``.

    Returns ``(None, event_fields)`` for one event or ``(items, outer_fields)`` for a batch. Outer
    fields (type, timestamp, source, tier ...) fill what the inner event leaves out.
    """
    event_keys = _EVENT_KEYS[kind]
    outer: dict[str, Any] | None = None
    current = obj
    for _ in range(_MAX_ENVELOPE_DEPTH):
        if _WRAPPER_KEYS.isdisjoint(current):  # the common flat message: nothing to peel
            break
        for key in _BATCH_KEYS[kind]:
            items = current.get(key)
            if type(items) is list:
                return items, _without(current, key, outer)
        is_event = not event_keys.isdisjoint(current)
        for key in _ENVELOPE_KEYS:
            inner = current.get(key)
            if type(inner) is dict:
                # {"symbol": ..., "data": {...details}} keeps "data" as a field of the event.
                if is_event and event_keys.isdisjoint(inner):
                    continue
                outer = _without(current, key, outer)
                current = inner
                break
            if type(inner) is list and not is_event:
                return inner, _without(current, key, outer)
        else:
            break
    return None, current if outer is None else {**outer, **current}


def _is_test_payload(data: dict[str, Any], kind: str) -> bool:
    if not _EVENT_KEYS[kind].isdisjoint(data) and kind != "health":
        return False
    if "test" in data and "symbol" not in data:
        return True
    marker = data.get("type")
    if not isinstance(marker, str):
        return False
    marker = marker.lower()
    return marker in _IGNORED_TYPES or (marker == "heartbeat" and kind != "health")


def _metadata(data: dict[str, Any], kind: str, extra_known: tuple[str, ...] = ()) -> Any:
    known = _KNOWN_KEYS[kind]
    metadata = {
        key: value
        for key, value in data.items()
        if key not in known
        and key not in extra_known
        and not (
            key in ("type", "event_type") and isinstance(value, str) and value in _GENERIC_TYPES
        )
    }
    producer = data.get("metadata")
    if producer is None:
        return metadata
    if not isinstance(producer, dict):
        return producer  # the schema rejects it with a precise message
    if not metadata:
        return producer
    metadata.update(producer)
    return metadata


def _source(data: dict[str, Any], ctx: _Context) -> tuple[Any, str | None]:
    """The output source and, when the producer put a tier name in ``source``, that tier."""
    source = data.get("source")
    if source is None:
        return ctx.source_default, None
    if isinstance(source, str):
        text = source.strip()
        lowered = text.lower()
        if lowered in _TIER_SET:
            return ctx.source_default, lowered
        return (text or ctx.source_default), None
    return source, None


def _tier_fields(data: dict[str, Any], ctx: _Context) -> tuple[Any, Any, Any]:
    source, source_tier = _source(data, ctx)
    timeframe = _pick(data, _TIMEFRAME)
    tier = data.get("tier")
    if isinstance(tier, str):
        tier = tier.strip().lower() or None
    if tier is None:
        timeframe_tier = (
            _timeframe_tier(timeframe)
            if isinstance(timeframe, str) and len(timeframe) <= 32
            else None
        )
        tier = source_tier or timeframe_tier or ctx.default_tier
    if type(timeframe) is str:
        spelled = _TIMEFRAME_SPELLINGS.get(timeframe)
        if spelled is None and len(timeframe) <= 32:
            spelled = _TIMEFRAME_SPELLINGS[timeframe] = canonical_timeframe(timeframe)
            if len(_TIMEFRAME_SPELLINGS) > 256:  # producers use a handful; junk must not pile up
                _TIMEFRAME_SPELLINGS.clear()
        timeframe = spelled or (timeframe if spelled is None else None)
    if timeframe is None:
        timeframe = _TIER_TIMEFRAMES.get(tier, tier) if isinstance(tier, str) else tier
    return tier, timeframe, source


# --- per-kind builders --------------------------------------------------------------------------


def _typed_levels(levels: list[Any], price: Any) -> list[Any]:
    """Plain numbers (a list of them, as the producer's tables keep levels) typed by their
    place against the price, as every view of a detection types them
    (:func:`tickstock.detection.level_type`); anything else is left to the schema."""
    at = _number(price)
    return [
        item
        if (number := _number(item)) is None
        else {"type": level_type(number, at), "value": number}
        for item in levels
    ]


def _build_pattern(data: dict[str, Any], ctx: _Context) -> Event:
    tier, timeframe, source = _tier_fields(data, ctx)
    detected = _pick(data, _DETECTED)
    price = _pick(data, _PRICE)
    levels = data.get("levels")
    indicators = data.get("indicators")
    stored = data.get("pattern_data")
    if type(stored) is dict:
        # A producer table row as published: its price and indicators live in pattern_data.
        if price is None:
            price = _pick(stored, _PRICE)
        if indicators is None:
            indicators = stored.get("indicators")
    if type(levels) is list and levels and type(levels[0]) is not dict:
        levels = _typed_levels(levels, price)
    candidate: dict[str, Any] = {
        "event_id": _pick(data, _ID),
        "tier": tier,
        "timeframe": timeframe,
        "detected_at": ctx.received_at if detected is None else detected,
        "expires_at": _pick(data, _EXPIRES),
        "price": price,
        "levels": levels,
        "indicators": indicators,
        "metadata": _metadata(data, "pattern"),
        "source": source,
        "channel": ctx.channel,
        "received_at": ctx.received_iso,
    }
    for key, aliases in (
        ("symbol", _SYMBOL),
        ("pattern", _PATTERN_NAME),
        ("confidence", _CONFIDENCE),
    ):
        value = _pick(data, aliases)
        if value is not None:
            candidate[key] = value
    event = _validate(_PATTERN_SCHEMA, candidate, ctx)
    if event["event_id"] is None:
        event["event_id"] = _event_hash(
            "pattern", event["symbol"], event["pattern"], event["tier"], event["detected_at"]
        )
    confidence = event["confidence"]  # the priority, inline: this runs for every event
    event["priority"] = (
        "CRITICAL"
        if confidence >= 0.9
        else "HIGH"
        if confidence >= 0.8
        else "MEDIUM"
        if confidence >= 0.7
        else "LOW"
    )
    return Event("pattern", ctx.event_type, event["symbol"], event["event_id"], event)


def _build_indicator(data: dict[str, Any], ctx: _Context) -> Event:
    tier, timeframe, source = _tier_fields(data, ctx)
    value = data.get("value")
    values = _pick(data, _VALUES)
    if isinstance(value, dict) and values is None:
        value, values = None, value
    if value is None and values is None:
        raise _Rejected("missing_value", "indicator event has neither value nor values")
    calculated = _pick(data, _CALCULATED)
    candidate: dict[str, Any] = {
        "event_id": _pick(data, _ID),
        "value": value,
        "values": values,
        "tier": tier,
        "timeframe": timeframe,
        "calculated_at": ctx.received_at if calculated is None else calculated,
        "metadata": _metadata(data, "indicator"),
        "source": source,
        "channel": ctx.channel,
        "received_at": ctx.received_iso,
    }
    for key, aliases in (("symbol", _SYMBOL), ("indicator", _INDICATOR_NAME)):
        picked = _pick(data, aliases)
        if picked is not None:
            candidate[key] = picked
    event = _validate(_INDICATOR_SCHEMA, candidate, ctx)
    if event["event_id"] is None:
        event["event_id"] = _event_hash(
            "indicator",
            event["symbol"],
            event["indicator"],
            event["timeframe"],
            event["calculated_at"],
        )
    return Event("indicator", ctx.event_type, event["symbol"], event["event_id"], event)


def _build_alert(data: dict[str, Any], ctx: _Context) -> Event:
    critical = ctx.event_type == "critical_alert"
    symbol = _pick(data, _SYMBOL)
    if symbol is None and not critical:
        raise _Rejected("missing_symbol", "indicator alerts need a symbol")
    alert_type = _pick(data, ("alert_type", "alert"))
    marker = data.get("type")
    type_used = alert_type is None and isinstance(marker, str) and marker not in _GENERIC_TYPES
    if type_used:
        alert_type = marker
    message = _pick(data, _MESSAGE)
    if alert_type is None and message is None:
        raise _Rejected("missing_alert", "alert has neither alert_type nor message")
    severity = data.get("severity")
    detected = _pick(data, _ALERT_TIME)
    candidate: dict[str, Any] = {
        "event_id": _pick(data, _ID),
        "symbol": symbol,
        "alert_type": alert_type,
        "message": message,
        "severity": severity or ("critical" if critical else "warning"),
        "indicator": _pick(data, _INDICATOR_NAME),
        "value": data.get("value"),
        "detected_at": ctx.received_at if detected is None else detected,
        "metadata": _metadata(data, "alert", ("type",) if type_used else ()),
        "source": _source(data, ctx)[0],
        "channel": ctx.channel,
        "received_at": ctx.received_iso,
    }
    event = _validate(_ALERT_SCHEMA, candidate, ctx)
    if event["event_id"] is None:
        event["event_id"] = _event_hash(
            "alert",
            ctx.event_type,
            event["symbol"] or "",
            event["alert_type"] or "",
            event["message"] or "",
            event["detected_at"],
        )
    return Event("alert", ctx.event_type, event["symbol"], event["event_id"], event)


def _build_health(data: dict[str, Any], ctx: _Context) -> Event:
    stamp = _pick(data, _HEALTH_TIME)
    status = data.get("status")
    candidate: dict[str, Any] = {
        "event_id": _pick(data, _ID),
        "status": "unknown" if status is None else status,
        "timestamp": ctx.received_at if stamp is None else stamp,
        "metadata": _metadata(data, "health"),
        "source": _source(data, ctx)[0],
        "channel": ctx.channel,
        "received_at": ctx.received_iso,
    }
    event = _validate(_HEALTH_SCHEMA, candidate, ctx)
    if event["event_id"] is None:
        try:
            body = orjson.dumps(event["metadata"], option=orjson.OPT_SORT_KEYS).decode()
        except orjson.JSONEncodeError:
            raise _Rejected("invalid_field", "health payload cannot be re-serialised") from None
        event["event_id"] = _event_hash(
            "health", ctx.channel, event["status"], event["timestamp"], body
        )
    return Event("health", ctx.event_type, None, event["event_id"], event)


def _build_session(data: dict[str, Any], ctx: _Context) -> Event:
    name = ctx.channel.lower()
    # When the channel names the status, a producer "status" is detail and stays in metadata.
    status: Any = "started" if "start" in name else "stopped" if "stop" in name else None
    consumed: tuple[str, ...] = ()
    if status is None:
        status, consumed = data.get("status") or "unknown", ("status",)
    session_id = data.get("session_id")
    if session_id is None and type(data.get("session")) in (str, int):
        session_id, consumed = data.get("session"), (*consumed, "session")
    stamp = _pick(data, _SESSION_TIME)
    candidate: dict[str, Any] = {
        "event_id": _pick(data, _ID),
        "status": status,
        "session_id": session_id,
        "timestamp": ctx.received_at if stamp is None else stamp,
        "metadata": _metadata(data, "session", consumed),
        "source": _source(data, ctx)[0],
        "channel": ctx.channel,
        "received_at": ctx.received_iso,
    }
    event = _validate(_SESSION_SCHEMA, candidate, ctx)
    if event["event_id"] is None:
        event["event_id"] = _event_hash(
            "session", ctx.channel, event["status"], event["session_id"] or "", event["timestamp"]
        )
    return Event("session", ctx.event_type, None, event["event_id"], event)


# --- jobs (SPEC §13): the producer's progress and results reports -------------------------------
#
# Job reports are not events for the feed: ingest hands them to the job updater (realtime/jobs.py),
# which stores each state change once. They are cleaned rather than refused wherever that keeps a
# job's state right: text is stripped of control characters and clipped, numbers that are not
# finite become null, malformed trades and curve points are dropped (and counted), because a
# refused results message would leave the job to stall. Python producers write NaN into JSON,
# which is not JSON; job messages are read leniently for that (_lenient_job_json).

JOB_MESSAGE_MAX_BYTES: Final = 8 * 1024 * 1024
"""Largest job report read: a results message carries every trade and the equity curve."""
JOB_MAX_TRADES: Final = 10_000
JOB_MAX_CURVE_POINTS: Final = 20_000
JOB_MAX_METRICS: Final = 64
JOB_MAX_PATTERNS: Final = 200
JOB_MESSAGE_CHARS: Final = 500
JOB_ERROR_CHARS: Final = 2000

_JOB_ID: Final = ("job_id", "jobId", "job")
_JOB_PERCENT: Final = ("percent", "percentage", "progress_pct", "progress_percent", "pct")
_JOB_DONE: Final = ("symbols_completed", "completed_symbols", "completed", "processed", "done")
_JOB_TOTAL: Final = ("symbols_total", "total_symbols", "total")
_JOB_SYMBOL: Final = ("current_symbol", "symbol", "ticker")
_JOB_ERROR: Final = ("error", "error_message", "reason")
_JOB_ETA: Final = ("estimated_completion", "eta", "estimated_completion_at")
_JOB_RESULTS: Final = ("results", "result")
_PATTERN_METRICS: Final = ("pattern_metrics", "per_pattern", "by_pattern", "pattern_performance")
_CURVE: Final = ("equity_curve", "equity")
_JOB_STATUS_WORDS: Final = {
    **dict.fromkeys(
        ("running", "started", "start", "processing", "in_progress", "progress", "active"),
        "running",
    ),
    **dict.fromkeys(("queued", "pending", "accepted", "received"), "running"),
    **dict.fromkeys(
        ("completed", "complete", "done", "finished", "success", "succeeded"), "completed"
    ),
    **dict.fromkeys(("failed", "failure", "error", "errored"), "failed"),
    **dict.fromkeys(("cancelled", "canceled", "aborted", "stopped"), "cancelled"),
}
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]+")
_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


# One trade of a backtest; ``return`` is a fraction (0.05 is 5 %), after costs. (The functional
# form: "return" is a Python keyword.)
JobTrade = TypedDict(
    "JobTrade",
    {
        "symbol": str,
        "pattern": str | None,
        "entry_date": str | None,
        "entry_price": float | None,
        "exit_date": str | None,
        "exit_price": float | None,
        "exit_reason": str | None,
        "shares": float | None,
        "pnl": float | None,
        "return": float | None,
    },
)


class JobResults(TypedDict):
    """A backtest's outcome as stored and served: figures by name (returns and rates are
    fractions), the same per pattern, the equity curve as ``[date, value]`` and the trades."""

    metrics: dict[str, float | None]
    pattern_metrics: dict[str, dict[str, float | None]]
    equity_curve: list[tuple[str, float]]
    trades: list[JobTrade]
    trades_total: int
    dropped: int


class JobUpdate(TypedDict):
    """``data`` of a job report: what the producer says about one job, normalised."""

    job_id: str
    status: str
    progress: float | None
    current_symbol: str | None
    message: str | None
    error: str | None
    estimated_completion: str | None
    results: JobResults | None
    timestamp: str
    channel: str
    received_at: str


def _lenient_job_json(raw: bytes | str) -> Any:
    """A job report with NaN or Infinity in it (Python's json writes them): read with the
    standard library, which accepts them; None when it is not JSON even so."""
    import json

    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _job_text(value: Any, limit: int) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = _CONTROL.sub(" ", value[: limit * 2]).strip()[:limit]
    return text.encode("utf-8", "replace").decode("utf-8") or None


def _job_number(value: Any) -> float | None:
    if isinstance(value, str) and value.strip().endswith("%"):
        number = _number(value.strip()[:-1])
        return None if number is None else number / 100.0
    return _number(value)


def _job_date(value: Any) -> str | None:
    """A date (YYYY-MM-DD) from an ISO date or time, or epoch seconds/milliseconds."""
    if isinstance(value, str) and _DATE_RE.fullmatch(value.strip()):
        text = value.strip()
        try:
            datetime.strptime(text, "%Y-%m-%d")
        except ValueError:
            return None
        return text
    try:
        epoch = _epoch(value, "date")
    except PydanticCustomError:
        return None
    if not -2_208_988_800 <= epoch <= MAX_EXPIRY_TIMESTAMP:  # 1900 .. 2100
        return None
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def _job_progress(data: dict[str, Any]) -> float | None:
    """Progress as a fraction from ``progress`` (0-1, or 0-100 when above 1), a percent field,
    or done/total counts; None when the message has none. Exactly 1 reads as complete."""
    raw = data.get("progress")
    if isinstance(raw, dict):  # {"progress": {"completed": 3, "total": 10}}
        return _job_progress(raw)
    percent = False
    if raw is None:
        raw = _pick(data, _JOB_PERCENT)
        percent = raw is not None
    if raw is None:
        done, total = _number(_pick(data, _JOB_DONE)), _number(_pick(data, _JOB_TOTAL))
        if done is None or total is None or total <= 0 or not 0 <= done <= total:
            return None
        return done / total
    if isinstance(raw, str) and raw.strip().endswith("%"):
        raw, percent = raw.strip()[:-1], True
    number = _number(raw)
    if number is None or not 0.0 <= number <= 100.0:
        raise _Rejected(
            "invalid_field", f"progress must be a number in 0..1 or 0..100, got {_short(raw)}"
        )
    if percent or number > 1.0:
        number /= 100.0
    return min(number, 1.0)


def _job_status(data: dict[str, Any], ctx: _Context, has_results: bool, has_error: bool) -> str:
    status = data.get("status") or data.get("state")
    word = _JOB_STATUS_WORDS.get(status.strip().lower()) if isinstance(status, str) else None
    if ctx.event_type == "job_results":
        if word in ("completed", "failed", "cancelled"):
            return word
        if has_error and not has_results:
            return "failed"
        return "completed"
    return word or "running"


def _job_figures(value: Any, limit: int = JOB_MAX_METRICS) -> tuple[dict[str, float | None], int]:
    """Named figures (non-finite or non-numeric values are null); (figures, dropped)."""
    if not isinstance(value, dict):
        return {}, 0 if value is None else 1
    figures: dict[str, float | None] = {}
    dropped = 0
    for key, item in value.items():
        name = _job_text(key, 64)
        if name is None or len(figures) >= limit or isinstance(item, dict | list):
            dropped += 1
            continue
        figures[name] = None if isinstance(item, bool) else _job_number(item)
    return figures, dropped


def _job_pattern_metrics(value: Any) -> tuple[dict[str, dict[str, float | None]], int]:
    if isinstance(value, list):  # [{"pattern": "Doji", "win_rate": 0.5, ...}, ...]
        value = {
            item.get("pattern"): {k: v for k, v in item.items() if k != "pattern"}
            for item in value
            if isinstance(item, dict)
        }
    if not isinstance(value, dict):
        return {}, 0 if value is None else 1
    patterns: dict[str, dict[str, float | None]] = {}
    dropped = 0
    for key, figures in value.items():
        name = _job_text(key, 100)
        if name is None or len(patterns) >= JOB_MAX_PATTERNS or not isinstance(figures, dict):
            dropped += 1
            continue
        patterns[name], lost = _job_figures(figures)
        dropped += lost
    return patterns, dropped


def _job_curve(value: Any) -> tuple[list[tuple[str, float]], int]:
    if not isinstance(value, list):
        return [], 0 if value is None else 1
    curve: list[tuple[str, float]] = []
    dropped = 0
    for point in value[:JOB_MAX_CURVE_POINTS]:
        if isinstance(point, list | tuple) and len(point) >= 2:
            day, amount = _job_date(point[0]), _number(point[1])
        elif isinstance(point, dict):
            day = _job_date(_pick(point, ("date", "day", "timestamp", "time")))
            amount = _number(_pick(point, ("value", "equity", "portfolio_value")))
        else:
            day, amount = None, None
        if day is None or amount is None:
            dropped += 1
        else:
            curve.append((day, amount))
    return curve, dropped + max(0, len(value) - JOB_MAX_CURVE_POINTS)


def _job_trade(item: Any) -> JobTrade | None:
    if not isinstance(item, dict):
        return None
    symbol = _pick(item, _SYMBOL)
    if not isinstance(symbol, str) or len(symbol) > 32:
        return None
    symbol = symbol.strip().upper()
    if SYMBOL_RE.fullmatch(symbol) is None:
        return None
    ret = _number(_pick(item, ("return", "return_fraction", "trade_return")))
    if ret is None:
        percent = _number(_pick(item, ("return_pct", "return_percent", "pnl_pct")))
        ret = None if percent is None else percent / 100.0
    trade: dict[str, Any] = {
        "symbol": symbol,
        "pattern": _job_text(_pick(item, _PATTERN_NAME), 100),
        "entry_date": _job_date(_pick(item, ("entry_date", "entry_time", "entered_at", "entry"))),
        "entry_price": _number(item.get("entry_price")),
        "exit_date": _job_date(_pick(item, ("exit_date", "exit_time", "exited_at", "exit"))),
        "exit_price": _number(item.get("exit_price")),
        "exit_reason": _job_text(_pick(item, ("exit_reason", "reason")), 64),
        "shares": _number(_pick(item, ("shares", "quantity", "qty", "size"))),
        "pnl": _number(_pick(item, ("pnl", "profit", "profit_loss"))),
        "return": ret,
    }
    return cast(JobTrade, trade)


def _job_results(value: Any, data: dict[str, Any]) -> JobResults | None:
    """The results of a report: ``results`` (or the report itself when it carries the figures
    at its top level)."""
    if not isinstance(value, dict):
        if not ({"metrics", "trades", "equity_curve"} & data.keys()):
            return None
        value = data
    metrics, dropped = _job_figures(value.get("metrics"))
    patterns, lost = _job_pattern_metrics(_pick(value, _PATTERN_METRICS))
    dropped += lost
    curve, lost = _job_curve(_pick(value, _CURVE))
    dropped += lost
    raw_trades = value.get("trades")
    trades: list[JobTrade] = []
    total = 0
    if isinstance(raw_trades, list):
        total = len(raw_trades)
        for item in raw_trades[:JOB_MAX_TRADES]:
            trade = _job_trade(item)
            if trade is None:
                dropped += 1
            else:
                trades.append(trade)
    elif raw_trades is not None:
        dropped += 1
    return {
        "metrics": metrics,
        "pattern_metrics": patterns,
        "equity_curve": curve,
        "trades": trades,
        "trades_total": total,
        "dropped": dropped,
    }


def _build_job(data: dict[str, Any], ctx: _Context) -> Event:
    job_id = _pick(data, _JOB_ID)
    if isinstance(job_id, dict):  # {"job": {"id": ...}}
        job_id = job_id.get("id")
    if type(job_id) is int:
        job_id = str(job_id)
    if not isinstance(job_id, str) or not job_id.strip():
        raise _Rejected("missing_field", "a job report needs a job_id")
    job_id = job_id.strip()
    if len(job_id) > 128 or _CONTROL.search(job_id):
        raise _Rejected("invalid_field", "job_id must be at most 128 printable characters")
    raw_results = _pick(data, _JOB_RESULTS)
    if raw_results is None and isinstance(data.get("data"), dict):
        raw_results = data["data"]
    error = _job_text(_pick(data, _JOB_ERROR), JOB_ERROR_CHARS)
    if isinstance(raw_results, str):  # "results": "error text"
        error, raw_results = error or _job_text(raw_results, JOB_ERROR_CHARS), None
    results = _job_results(raw_results, data) if ctx.event_type == "job_results" else None
    status = _job_status(data, ctx, results is not None, error is not None)
    progress = _job_progress(data)
    if status == "completed":
        progress = 1.0
    symbol = _job_text(_pick(data, _JOB_SYMBOL), 32)
    if symbol is not None:
        symbol = symbol.upper()
        if SYMBOL_RE.fullmatch(symbol) is None:
            symbol = None
    eta = _pick(data, _JOB_ETA)
    try:
        eta_epoch = None if eta is None else _epoch(eta, "estimated_completion")
    except PydanticCustomError:
        eta_epoch = None
    # An estimate outside 1990..2100 is a unit mix-up: left out rather than stored.
    eta_iso = (
        _iso(eta_epoch)
        if eta_epoch is not None and MIN_TIMESTAMP <= eta_epoch <= MAX_EXPIRY_TIMESTAMP
        else None
    )
    stamp = data.get("timestamp")
    try:
        stamp_epoch = ctx.received_at if stamp is None else _epoch(stamp, "timestamp")
        if not MIN_TIMESTAMP <= stamp_epoch <= ctx.received_at + MAX_FUTURE_SKEW:
            stamp_epoch = ctx.received_at
    except PydanticCustomError:
        stamp_epoch = ctx.received_at
    update: JobUpdate = {
        "job_id": job_id,
        "status": status,
        "progress": progress,
        "current_symbol": symbol,
        "message": _job_text(data.get("message") or data.get("msg"), JOB_MESSAGE_CHARS),
        "error": error if status == "failed" else None,
        "estimated_completion": eta_iso,
        "results": results if status == "completed" else None,
        "timestamp": _iso(stamp_epoch),
        "channel": ctx.channel,
        "received_at": ctx.received_iso,
    }
    event_id = _event_hash("job", ctx.channel, job_id, status, repr(progress), update["timestamp"])
    return Event("job", ctx.event_type, None, event_id, cast(dict[str, Any], update))


_BUILDERS: Final = {
    "pattern": _build_pattern,
    "indicator": _build_indicator,
    "alert": _build_alert,
    "health": _build_health,
    "session": _build_session,
    "job": _build_job,
}


# --- entry point --------------------------------------------------------------------------------


def _sample(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        return _clip(raw[: _SAMPLE_CHARS * 4].decode("utf-8", "replace"), _SAMPLE_CHARS)
    return _clip(raw, _SAMPLE_CHARS)


def _item_sample(item: Any) -> str:
    try:
        return _sample(orjson.dumps(item)[: _SAMPLE_CHARS * 4])
    except Exception:  # too deep for orjson: a type name still helps the log reader
        return _short(item)


def _reject(reason: str, detail: str, sample: str) -> NormaliseResult:
    return NormaliseResult([], [Reject(reason, _clip(detail), sample)])


def normalise(
    raw: bytes | str,
    channel: str,
    *,
    received_at: datetime | None = None,
    max_bytes: int = MAX_MESSAGE_BYTES_DEFAULT,
    source_default: str = "TickStockPL",
) -> NormaliseResult:
    """Turn one Redis message into normalised events and rejects; never raises.

    ``received_at`` defaults to now (naive values are UTC); it stands in for missing timestamps
    and bounds future ones. Batches yield one event or reject per item.
    """
    try:
        return _normalise(raw, channel, received_at, max_bytes, source_default)
    except Exception as exc:  # the ingest loop must survive anything a message can trigger
        try:
            sample = _sample(raw)
        except Exception:
            sample = _short(raw)
        return _reject("internal_error", f"{type(exc).__name__}: {exc}", sample)


def _normalise(
    raw: bytes | str,
    channel: str,
    received_at: datetime | None,
    max_bytes: int,
    source_default: str,
) -> NormaliseResult:
    if isinstance(raw, bytearray | memoryview):
        raw = bytes(raw)
    if isinstance(raw, bytes):
        size = len(raw)
    elif isinstance(raw, str):
        size = len(raw)
        if size * 4 > max_bytes >= size:
            size = len(raw.encode("utf-8", "surrogatepass"))
    else:
        return _reject("invalid_json", f"expected bytes or str, got {type(raw).__name__}", "")
    if size > max_bytes:
        return _reject("too_large", f"message is {size} bytes, limit {max_bytes}", _sample(raw))
    if isinstance(channel, bytes | bytearray):
        channel = bytes(channel).decode("utf-8", "replace")
    profile = _channel_profile(channel)
    if profile is None:
        return _reject(
            "unknown_channel", f"no event kind for channel {_short(channel)}", _sample(raw)
        )
    kind, event_type, default_tier = profile
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        obj = _lenient_job_json(raw) if kind == "job" else None
        if obj is None:
            return _reject("invalid_json", str(exc), _sample(raw))

    received = time.time() if received_at is None else _datetime_epoch(received_at)
    ctx = _Context(
        channel=channel,
        event_type=event_type,
        default_tier=default_tier,
        received_at=received,
        received_iso=_iso(received),
        source_default=source_default,
        validation={"now": received},
    )
    build = _BUILDERS[kind]

    if isinstance(obj, dict):
        if _is_test_payload(obj, kind):
            return NormaliseResult([], [], ignored=True)
        items, fields = _unwrap(obj, kind)
        if items is None:
            if fields is not obj and _is_test_payload(fields, kind):
                return NormaliseResult([], [], ignored=True)
            try:
                return NormaliseResult([build(fields, ctx)], [])
            except _Rejected as rejected:
                return _reject(rejected.reason, rejected.detail, _sample(raw))
        # A message id on a batch envelope names the batch, not each of its events.
        outer = {key: value for key, value in fields.items() if key not in _ID}
    elif isinstance(obj, list):
        items, outer = obj, {}
    else:
        return _reject(
            "not_an_object",
            f"expected a JSON object or list, got {type(obj).__name__}",
            _sample(raw),
        )

    if not items:
        return _reject("empty_batch", "batch has no items", _sample(raw))
    if len(items) > MAX_BATCH_ITEMS:
        return _reject(
            "batch_too_large",
            f"batch has {len(items)} items, limit {MAX_BATCH_ITEMS}",
            _sample(raw),
        )
    events: list[Event] = []
    rejects: list[Reject] = []
    ignored = 0
    for index, item in enumerate(items):
        try:
            events.append(_build_item(item, index, outer, kind, ctx, build))
        except _Rejected as rejected:
            rejects.append(Reject(rejected.reason, rejected.detail, _item_sample(item)))
        except _Ignored:
            ignored += 1
        except Exception as exc:  # one pathological item must not cost the rest of the batch
            detail = _clip(f"item {index}: {type(exc).__name__}: {exc}")
            rejects.append(Reject("internal_error", detail, _item_sample(item)))
    return NormaliseResult(events, rejects, ignored=ignored == len(items))


def _build_item(
    item: Any,
    index: int,
    outer: dict[str, Any],
    kind: str,
    ctx: _Context,
    build: Callable[[dict[str, Any], _Context], Event],
) -> Event:
    if not isinstance(item, dict):
        raise _Rejected("not_an_object", f"item {index} is a {type(item).__name__}, not an object")
    if _is_test_payload(item, kind):
        raise _Ignored
    nested, fields = _unwrap(item, kind)
    if nested is not None:
        raise _Rejected("nested_batch", f"item {index} is itself a batch")
    try:
        return build({**outer, **fields} if outer else fields, ctx)
    except _Rejected as rejected:
        raise _Rejected(rejected.reason, _clip(f"item {index}: {rejected.detail}")) from None
