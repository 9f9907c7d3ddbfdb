"""What `tickstock serve` prints: each start-up line once, the ready line last."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.env import free_port, session_env

REPO = Path(__file__).resolve().parents[1]


def test_start_up_lines_are_printed_once(settings_overrides: dict[str, Any]) -> None:
    port = free_port()
    env = session_env(settings_overrides, demo_producer="false", log_level="INFO")
    env["PYTHONUNBUFFERED"] = "1"
    serve = subprocess.Popen(
        [sys.executable, "-m", "tickstock", "serve", "--bind", f"127.0.0.1:{port}"],
        cwd=REPO,  # with the shipped hypercorn.toml
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert serve.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = serve.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if line.startswith("ready:"):
                break
        assert any(line.startswith("ready:") for line in lines), "\n".join(lines)
    finally:
        serve.send_signal(signal.SIGINT)
        rest, _ = serve.communicate(timeout=30)
    lines += rest.splitlines()
    running = [line for line in lines if "Running on" in line]
    assert len(running) == 1, "\n".join(lines)
    assert f"http://127.0.0.1:{port}" in running[0]
    assert serve.returncode == 0, "\n".join(lines)
    # Ctrl-C with no socket open is an ordinary stop: no warning about draining.
    assert not [line for line in lines if "WARNING" in line and "draining" in line], "\n".join(
        lines
    )
