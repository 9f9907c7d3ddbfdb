"""The script call the event link sends is the one ``append_many`` sends."""

from __future__ import annotations

from unittest.mock import patch

from tickstock.realtime.history import EventStore


def test_the_links_script_call_equals_the_stores_own() -> None:
    store = EventStore(
        None,  # type: ignore[arg-type]
        prefix="p",
        history_max_events=1000,
        history_max_age_seconds=3600,
    )
    with patch("tickstock.realtime.history.time.time", return_value=1_795_000_000.1234):
        for event_type, symbol in [
            ("pattern_detected", "AAPL"),
            ("indicator_update", "BRK.B"),
            ("system_health", None),
            ("pattern_detected", None),
        ]:
            data = {"event_id": "e1", "symbol": symbol, "x": [1, 2]}
            keys, args = store._script_call(event_type, symbol, "e1", data)
            expected = ("EVALSHA", store._sha, len(keys), *keys, *args)
            assert store.script_args(event_type, symbol, "e1", data) == expected
