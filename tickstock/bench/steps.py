"""``tickstock bench steps``: where a node's CPU goes per event, from a py-spy profile.

Record the served node while ``tickstock bench fanout`` runs, holding the GIL only, so a sample is
Python (or C called from Python) running on the node's behalf::

    py-spy record --gil --native -r 1000 -f raw -d 10 -p <server pid> -o profile.txt

Each sample is attributed to the step of the innermost frame that names one (``STEPS``), and the
shares are scaled to the CPU per event the benchmark measured in the same run. Samples in no
step's frame are the libraries' own work (engine.io, hypercorn) or the event loop.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

_FRAME = re.compile(r"^(?P<func>.*) \((?P<path>.*?)(?::\d+)?\)$")

# (path fragment, function name prefixes or None for any, step), checked innermost frame first.
STEPS: list[tuple[str, tuple[str, ...] | None, str]] = [
    ("prometheus_client", None, "metrics"),
    ("tickstock/metrics.py", None, "metrics"),
    ("logging/", None, "logs"),
    ("tickstock/logconfig.py", None, "logs"),
    ("realtime/events.py", None, "normalise"),
    ("realtime/history.py", None, "script call: build, write, read the reply"),
    ("realtime/link.py", ("RedisLink.send",), "script call: build, write, read the reply"),
    ("realtime/link.py", ("EventLink._on_push", "RedisLink.command"), "Redis reads: routing"),
    ("realtime/link.py", None, "Redis reads: socket read and RESP parse"),
    ("realtime/wire.py", None, "delivery: rooms, frame, socket writes"),
    ("realtime/wsdirect.py", None, "delivery: rooms, frame, socket writes"),
    ("realtime/fanout.py", ("Delivery.",), "delivery: rooms, frame, socket writes"),
    ("realtime/fanout.py", None, "live entry: order and gap check"),
    ("realtime/alerts.py", None, "alert matcher"),
    (
        "realtime/ingest.py",
        ("IngestConsumer._run", "IngestConsumer.run"),
        "Redis reads: socket read and RESP parse",
    ),
    ("realtime/ingest.py", None, "ingest bookkeeping"),
    ("realtime/hub.py", None, "timers: gauges, subscriptions, churn"),
]
_LIBRARIES = re.compile(r"engineio|socketio|hypercorn|wsproto|h11|quart")


def step_of(frames: list[tuple[str, str]]) -> str:
    """The step a sample belongs to, from its frames (outermost first) as (function, path)."""
    for func, path in reversed(frames):
        for fragment, prefixes, step in STEPS:
            if fragment in path and (prefixes is None or func.startswith(prefixes)):
                return step
    paths = " ".join(path for _, path in frames)
    if _LIBRARIES.search(paths):
        return "libraries: engine.io, hypercorn (pings, timers)"
    if "redis/" in paths:
        return "redis-py (other)"
    if "asyncpg" in paths:
        return "asyncpg"
    return "event loop and other"


def parse_frames(stack: str) -> list[tuple[str, str]]:
    frames = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame)
        frames.append((match["func"], match["path"]) if match else (frame, ""))
    return frames


def attribute(lines: Iterable[str]) -> Counter[str]:
    """Samples per step from py-spy's raw output (``stack count`` lines)."""
    counts: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            counts[step_of(parse_frames(stack))] += int(count)
    return counts


def format_table(counts: Counter[str], per_event_us: float | None) -> str:
    total = sum(counts.values()) or 1
    rows = ["| step | share of samples | µs per event |", "|---|---|---|"]
    for step, count in counts.most_common():
        share = count / total
        us = f"{per_event_us * share:.0f}" if per_event_us else "—"
        rows.append(f"| {step} | {share * 100:.1f} % | {us} |")
    rows.append(f"| **all** ({total} samples) | 100 % | {per_event_us or '—'} |")
    return "\n".join(rows)
