"""One detection, one shape: the fields every view of a pattern detection carries alike.

A detection reaches people and programs five ways: the REST lists (``GET /api/patterns...``), the
screener, CSV exports, the live ``pattern_detected`` event and an alert's ``event``. Each view adds
its own fields (a row id, an event id and offset, market figures), but the fields of the detection
itself are declared here once, with the same names, types and vocabularies (``tier``,
``timeframe`` and level types from :mod:`tickstock.vocab`): the queries build them, the ingest
normaliser produces them, and the OpenAPI document describes them from this class.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Final, Literal

from pydantic import Field
from typing_extensions import TypedDict

from tickstock.vocab import LEVEL_TYPES, TIMEFRAMES, Tier

__all__ = [
    "DETECTION_EXAMPLE",
    "Detection",
    "Level",
    "Priority",
    "level_type",
    "plain_levels",
    "priority",
]

Priority = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"]

Timestamp = Annotated[
    str,
    Field(
        json_schema_extra={"format": "date-time"},
        description="ISO-8601 UTC with milliseconds, e.g. 2026-11-26T14:30:00.000Z",
    ),
]
Timeframe = Annotated[
    str,
    Field(description="The bar interval: " + ", ".join(TIMEFRAMES) + " (others as 2h, 240min ...)"),
]


class Level(TypedDict):
    """A price level of the detection."""

    type: Annotated[
        str,
        Field(
            description="support, resistance, target ... A plain number the producer sends or"
            " stores is typed by its place: "
            + ", ".join(LEVEL_TYPES)
            + " (support at or below the detection's price, resistance above it, level when"
            " the detection has no price)"
        ),
    ]
    value: float


class Detection(TypedDict):
    """A pattern detection: the fields REST rows, CSV rows, live events and alerts share."""

    symbol: str
    pattern: str
    confidence: Annotated[float, Field(ge=0.0, le=1.0)]
    priority: Annotated[
        Priority, Field(description="CRITICAL >= 0.9, HIGH >= 0.8, MEDIUM >= 0.7, else LOW")
    ]
    tier: Tier
    timeframe: Timeframe
    detected_at: Timestamp
    expires_at: Timestamp | None
    price: Annotated[float | None, Field(description="The price when the pattern was detected")]
    levels: list[Level]
    indicators: Annotated[
        dict[str, Any], Field(description="Indicator values the producer saw, e.g. rsi")
    ]


DETECTION_EXAMPLE: Final[dict[str, Any]] = {
    "symbol": "AAPL",
    "pattern": "Breakout",
    "confidence": 0.88,
    "priority": "HIGH",
    "tier": "daily",
    "timeframe": "daily",
    "detected_at": "2026-11-26T14:30:00.000Z",
    "expires_at": "2026-11-29T14:30:00.000Z",
    "price": 185.2,
    "levels": [{"type": "support", "value": 180.5}, {"type": "resistance", "value": 190.0}],
    "indicators": {"rsi": 65.0},
}
"""The example ``/docs`` shows for a detection."""


def priority(confidence: float) -> Priority:
    """CRITICAL >= 0.9, HIGH >= 0.8, MEDIUM >= 0.7, else LOW."""
    if confidence >= 0.9:
        return "CRITICAL"
    if confidence >= 0.8:
        return "HIGH"
    if confidence >= 0.7:
        return "MEDIUM"
    return "LOW"


def level_type(value: float, price: float | None) -> str:
    """The type of a plain level: support at or below ``price``, resistance above, else level."""
    if price is None:
        return "level"
    return "support" if value <= price else "resistance"


def plain_levels(values: Iterable[float | None], price: float | None) -> list[Level]:
    """Typed levels from plain numbers (the producer tables' ``levels numeric[]``, or a list of
    numbers on Redis), typed by :func:`level_type`; missing numbers are left out."""
    return [
        {"type": level_type(value, price), "value": value} for value in values if value is not None
    ]
