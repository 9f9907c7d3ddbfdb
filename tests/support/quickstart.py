"""``tickstock serve`` run as the README's quick start runs it (nothing configured: its own local
stack and demo producer), for the tests of a first run."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.env import free_port, tickstock_env

# The ready line: the address and the login that works (the saved demo password, or the one its
# owner set on the Account page).
READY = re.compile(r"^ready: open (http://\S+) and sign in as (\S+) / (\S+) ")
READY_OWNERS_PASSWORD = re.compile(
    r"^ready: open (http://\S+) and sign in as (\S+) with the password you set"
)


class QuickStart:
    """``tickstock serve --bind 127.0.0.1:<port>`` in ``cwd``; every start appends to one log."""

    def __init__(self, cwd: Path, **settings: str) -> None:
        self.cwd = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / "serve.log"
        self.settings = settings
        self.starts = 0
        self.server: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            self.server = subprocess.Popen(
                [sys.executable, "-m", "tickstock", "serve", "--bind", f"127.0.0.1:{self.port}"],
                cwd=self.cwd,
                env=tickstock_env(**self.settings),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        return self.server

    def log(self) -> str:
        return self.log_path.read_text()

    async def ready(self, pattern: re.Pattern[str] = READY, within: float = 120) -> re.Match[str]:
        """The ready line of the latest start, which must read as ``pattern``."""
        assert self.server is not None
        started = time.monotonic()
        while time.monotonic() - started < within:
            assert self.server.poll() is None, self.log()[-3000:]
            lines = [line for line in self.log().splitlines() if line.startswith("ready:")]
            if len(lines) >= self.starts:
                match = pattern.match(lines[self.starts - 1])
                assert match, lines[self.starts - 1]
                return match
            await asyncio.sleep(0.25)
        raise AssertionError("no ready line:\n" + self.log()[-3000:])

    def stop(self) -> int:
        """SIGTERM, as Ctrl-C or ``systemctl stop`` would; its exit code."""
        server, self.server = self.server, None
        if server is None:
            return 0
        server.send_signal(signal.SIGTERM)
        try:
            return server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
