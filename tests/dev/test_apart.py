"""The served app never imports the development tooling, the command line or the benchmark."""

from __future__ import annotations

import subprocess
import sys

from tests.support.env import tickstock_env

TOOLING = ("tickstock.dev", "tickstock.cli", "tickstock.bench")


def test_served_app_imports_no_tooling() -> None:
    # A fresh interpreter: this one has imported the tooling for other tests.
    code = (
        "import sys, tickstock.asgi\n"
        f"print(' '.join(sorted(m for m in sys.modules if m.startswith({TOOLING!r}))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=tickstock_env(env="test"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []
