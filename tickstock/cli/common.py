"""What every command group shares: settings, the event loop, a database connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import asyncpg
import click

from tickstock.config import ConfigError, Settings, load_settings

T = TypeVar("T")


def cli_settings(**overrides: Any) -> Settings:
    """The settings, with a configuration error reported as a command-line error."""
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def run(coro: Awaitable[T]) -> T:
    async def wrapper() -> T:
        return await coro

    return asyncio.run(wrapper())


async def connect(dsn: str, what: str = "database") -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise click.ClickException(f"cannot connect to the {what} at {redact(dsn)}: {exc}") from exc


def redact(url: str) -> str:
    """Hide a password in a URL before printing it."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}{':***' if ':' in creds else ''}@{host}"
    return url


def require_database(settings: Settings) -> str:
    if not settings.database_url:
        raise click.ClickException(
            "TICKSTOCK_DATABASE_URL is not set (set it, or run `tickstock serve` for the local stack)"
        )
    return settings.database_url
