"""The PostgreSQL and Redis a test session runs against."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit


@dataclass
class Stores:
    admin_dsn: str
    redis_url: str
    stack: Any = None  # the local stack, when it had to be started


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def with_database(dsn: str, name: str) -> str:
    """``dsn`` pointing at the database ``name``."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))
