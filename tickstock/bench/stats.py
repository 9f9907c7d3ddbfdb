"""Accounting shared by the benchmarks: percentiles and delivery bookkeeping."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(latencies_ms: Iterable[float]) -> dict[str, float]:
    values = sorted(latencies_ms)
    return {
        "p50_ms": round(percentile(values, 0.50), 3),
        "p90_ms": round(percentile(values, 0.90), 3),
        "p99_ms": round(percentile(values, 0.99), 3),
        "p999_ms": round(percentile(values, 0.999), 3),
        "max_ms": round(values[-1], 3) if values else 0.0,
    }


@dataclass
class DeliveryLedger:
    """What one client should have received and what it did, per symbol, in order."""

    expected: dict[str, list[int]] = field(default_factory=dict)
    received: dict[str, list[int]] = field(default_factory=dict)

    def expect(self, symbol: str, seq: int) -> None:
        self.expected.setdefault(symbol, []).append(seq)

    def receive(self, symbol: str, seq: int) -> None:
        self.received.setdefault(symbol, []).append(seq)

    def account(self) -> dict[str, int]:
        """Counts of expected, received, lost, duplicated and out-of-order deliveries."""
        expected = received = lost = duplicates = out_of_order = unexpected = 0
        for symbol in set(self.expected) | set(self.received):
            want = self.expected.get(symbol, [])
            got = self.received.get(symbol, [])
            want_set = set(want)
            seen: set[int] = set()
            last = -1
            for seq in got:
                if seq in seen:
                    duplicates += 1
                    continue
                seen.add(seq)
                if seq not in want_set:
                    unexpected += 1
                    continue
                if seq < last:
                    out_of_order += 1
                last = max(last, seq)
            expected += len(want)
            received += len(seen & want_set)
            lost += len(want_set - seen)
        return {
            "expected": expected,
            "received": received,
            "lost": lost,
            "duplicates": duplicates,
            "out_of_order": out_of_order,
            "unexpected": unexpected,
        }
