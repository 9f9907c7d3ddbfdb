"""Where the tests run: the repository root, free ports, and child-process environments.

``tickstock_env(...)`` is the environment a ``tickstock`` child process runs with: this process's
environment without any ``TICKSTOCK_*`` variable, plus the settings given.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tickstock_env(**settings: str) -> dict[str, str]:
    """This environment without ``TICKSTOCK_*``, plus ``TICKSTOCK_<NAME>`` for each setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKSTOCK_")}
    env.update({f"TICKSTOCK_{name.upper()}": value for name, value in settings.items()})
    return env


def session_env(settings_overrides: dict[str, Any], **settings: str) -> dict[str, str]:
    """``tickstock_env`` on the test session's database, Redis and key prefix (``env=test``)."""
    return tickstock_env(
        env="test",
        database_url=settings_overrides["database_url"],
        redis_url=settings_overrides["redis_url"],
        key_prefix=settings_overrides["key_prefix"],
        **settings,
    )
