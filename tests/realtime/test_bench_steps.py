"""``tickstock bench steps``: py-spy samples attributed to the steps of one event."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tickstock.bench.steps import attribute
from tickstock.cli import main

LOOP = "<module> (hypercorn:6);Runner.run (asyncio/runners.py:118)"
READ = f"{LOOP};RedisLink.data_received (tickstock/realtime/link.py:98)"
PROFILE = [
    f"{READ};EventLink._on_read (tickstock/realtime/link.py:300);IngestConsumer.flush "
    "(tickstock/realtime/ingest.py:297);normalise (tickstock/realtime/events.py:1091) 30",
    f"{READ};EventLink._on_read (tickstock/realtime/link.py:300);IngestConsumer.flush "
    "(tickstock/realtime/ingest.py:301);RedisLink.send (tickstock/realtime/link.py:142) 20",
    f"{READ};FanoutReader._delivered (tickstock/realtime/fanout.py:454);Delivery.deliver "
    "(tickstock/realtime/fanout.py:130);Link.write_frame (tickstock/realtime/wsdirect.py:132) 25",
    f"{READ};FanoutReader._delivered (tickstock/realtime/fanout.py:454);"
    "MetricWrapperBase.labels (prometheus_client/metrics.py:182) 5",
    f"{READ} 10",
    f"{LOOP};AsyncSocket._send_ping (engineio/async_socket.py:90) 10",
    "not a profile line",
]


def test_each_sample_goes_to_the_innermost_step_that_names_it() -> None:
    counts = attribute(PROFILE)
    assert counts == {
        "normalise": 30,
        "script call: build, write, read the reply": 20,
        "delivery: rooms, frame, socket writes": 25,
        "metrics": 5,
        "Redis reads: socket read and RESP parse": 10,
        "libraries: engine.io, hypercorn (pings, timers)": 10,
    }


def test_the_command_scales_the_shares_to_the_measured_cpu(tmp_path: Path) -> None:
    profile = tmp_path / "profile.txt"
    profile.write_text("\n".join(PROFILE))
    result = CliRunner().invoke(main, ["bench", "steps", str(profile), "--cpu-per-event", "200"])
    assert result.exit_code == 0, result.output
    assert "| normalise | 30.0 % | 60 |" in result.output
    assert "| delivery: rooms, frame, socket writes | 25.0 % | 50 |" in result.output
    assert "(100 samples)" in result.output
