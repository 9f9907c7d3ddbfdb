"""The pattern fast path validates exactly as the schema: the same event, or it steps aside."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from tickstock.realtime import events
from tickstock.realtime.events import _Context, _fast_pattern, _iso, _Rejected, _validate

NOW = 1_796_000_000.0
CTX = _Context(
    channel="tickstock.events.patterns",
    event_type="pattern_detected",
    default_tier="daily",
    received_at=NOW,
    received_iso=_iso(NOW),
    source_default="TickStockPL",
    validation={"now": NOW},
)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from(["0.5", " 87.3 ", "1e3", "abc", "", "NaN"]),
    st.booleans(),
    st.none(),
)
texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["AAPL", " brk.b ", "BF-B", "Breakout", "x" * 130, "  "]),
    st.integers(min_value=-5, max_value=10**6),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
timestamps = st.one_of(
    st.floats(min_value=-1e19, max_value=1e19),
    st.sampled_from([NOW, NOW * 1000, NOW + 10_000, 0, "2026-11-26T14:30:00Z", "2026-11-26", "x"]),
    st.none(),
)
levels = st.one_of(
    st.none(),
    st.lists(numbers, max_size=3),
    st.lists(
        st.fixed_dictionaries({"type": texts, "value": numbers}),
        max_size=3,
    ),
    st.dictionaries(st.sampled_from(["support", "resistance"]), numbers, max_size=2),
    texts,
)
nested: Any = st.recursive(
    st.one_of(st.none(), st.integers(), st.text(max_size=4)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=12,
)


MISSING = object()
# Ordinary values of each field (every combination is a valid pattern), and odd ones.
ORDINARY: dict[str, list[Any]] = {
    "event_id": [None, "e1", " e2 ", 42, ""],
    "symbol": ["AAPL", "aapl", " brk.b ", "BF-B", "X1"],
    "pattern": ["Breakout", " Breakout ", "HeadAndShoulders"],
    "confidence": [0.5, 0.91, 88, 87.3, "0.7", 1, 0],
    "tier": ["daily", "intraday", "weekly", "combo"],
    "timeframe": ["daily", "1min", "hourly"],
    "detected_at": [
        NOW,
        NOW * 1000,
        NOW - 86_400,
        1_700_000_000,
        "2026-11-26T14:30:00Z",
        "2026-11-26T14:30:00+02:00",
        "2026-11-26 14:30:00",
    ],
    "expires_at": [None, NOW + 86_400, "2026-12-26T00:00:00Z"],
    "price": [None, 185.2, 100, "12.5", 0],
    "levels": [
        None,
        [],
        [{"type": "support", "value": 180.5}],
        [180.5, 190],
        {"support": 180, "resistance": [190, 195]},
        [{"kind": "target", "price": "200"}],
    ],
    "indicators": [None, {}, {"rsi": 65}, {"rsi": 65.5, "note": "x"}],
    "metadata": [{}, {"a": 1}, {"x": [1, {"y": 2}]}],
    "source": ["TickStockPL", "x"],
    "channel": ["tickstock.events.patterns"],
    "received_at": [_iso(NOW)],
}
ODD: dict[str, Any] = {
    "event_id": texts,
    "symbol": st.one_of(texts, st.just(MISSING)),
    "pattern": st.one_of(texts, st.just(MISSING)),
    "confidence": st.one_of(numbers, st.just(MISSING)),
    "tier": st.sampled_from(["x", None, 3, "DAILY"]),
    "timeframe": st.sampled_from(["", "x" * 40, None, 3]),
    "detected_at": timestamps,
    "expires_at": timestamps,
    "price": numbers,
    "levels": levels,
    "indicators": st.one_of(texts, st.dictionaries(st.text(max_size=3), numbers, max_size=2)),
    "metadata": st.one_of(texts, nested),
    "source": st.sampled_from(["", "s" * 70, None]),
}


def _candidate(base: dict[str, Any], odd: list[tuple[str, Any]]) -> dict[str, Any]:
    candidate = {**base, **dict(odd)}
    return {key: value for key, value in candidate.items() if value is not MISSING}


# An ordinary candidate with up to two fields made odd: most examples reach the fast path's end.
candidates = st.builds(
    _candidate,
    st.fixed_dictionaries({key: st.sampled_from(values) for key, values in ORDINARY.items()}),
    st.lists(
        st.one_of([st.tuples(st.just(key), strategy) for key, strategy in ODD.items()]),
        max_size=2,
    ),
)


@settings(max_examples=3000, deadline=None)
@given(candidates)
def test_the_fast_path_equals_the_schema_or_steps_aside(candidate: dict[str, Any]) -> None:
    fast = _fast_pattern(dict(candidate), CTX)
    try:
        slow: dict[str, Any] | None = _validate(events._PATTERN_SCHEMA, dict(candidate), CTX)
    except _Rejected:
        slow = None
    if fast is not None:
        assert slow is not None, "the fast path accepted what the schema rejects"
        assert fast == slow
        assert list(fast) == list(slow)
    event(f"fast path {'taken' if fast is not None else 'not taken'}")


def test_the_ordinary_message_takes_the_fast_path() -> None:
    candidate = {
        "event_id": "e1",
        "symbol": "aapl",
        "pattern": "Breakout",
        "confidence": 88,
        "tier": "daily",
        "timeframe": "daily",
        "detected_at": time.time(),
        "expires_at": None,
        "price": 185.2,
        "levels": [{"type": "support", "value": 180.5}],
        "indicators": {"rsi": 65},
        "metadata": {"x": [1, {"y": 2}]},
        "source": "TickStockPL",
        "channel": "tickstock.events.patterns",
        "received_at": _iso(NOW),
    }
    ctx = dataclasses.replace(CTX, validation={"now": time.time()})
    fast = _fast_pattern(dict(candidate), ctx)
    assert fast is not None
    assert fast == _validate(events._PATTERN_SCHEMA, dict(candidate), ctx)
    assert fast["symbol"] == "AAPL" and fast["confidence"] == 0.88
