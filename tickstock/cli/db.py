"""``tickstock db``: schema migrations and demo data."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import click

from tickstock.cli.common import cli_settings, connect, require_database, run
from tickstock.config import Settings


@click.group()
def db() -> None:
    """Schema migrations and demo data."""


def _default_sets(settings: Settings) -> tuple[str, ...]:
    # Producer tables belong to the producer in production; ship them for dev, demo and tests.
    return ("tickstock",) if settings.is_production else ("producer", "tickstock")


async def migrate_database(dsn: str, sets: Sequence[str]) -> list[str]:
    from tickstock.db.migrate import migrate

    conn = await connect(dsn)
    try:
        return await migrate(conn, sets)
    finally:
        await conn.close()


@db.command("migrate")
@click.option(
    "--set",
    "sets",
    multiple=True,
    type=click.Choice(["producer", "tickstock"]),
    help="Migration set(s) to apply, repeatable (default: both; in production only tickstock, "
    "as the producer owns its tables: add `--set producer --set tickstock` for a database "
    "the producer has not set up, e.g. staging or a demo).",
)
def db_migrate(sets: tuple[str, ...]) -> None:
    """Apply pending migrations (idempotent)."""
    settings = cli_settings()
    chosen = sets or _default_sets(settings)
    applied = run(migrate_database(require_database(settings), chosen))
    click.echo(f"applied {len(applied)} migration(s)" + "".join(f"\n  {m}" for m in applied))
    if "producer" not in chosen:
        click.echo(
            "(production: the producer's tables are left to the producer;"
            " `tickstock db migrate --set producer` creates them)"
        )


async def seed_database(dsn: str) -> dict[str, int]:
    from tickstock.dev.seed import seed

    conn = await connect(dsn)
    try:
        return await seed(conn)
    except asyncpg.UndefinedTableError as exc:
        raise click.ClickException(
            f"this database has no producer tables ({exc}): create them first with"
            " `tickstock db migrate --set producer`"
        ) from exc
    finally:
        await conn.close()


@db.command("seed")
def db_seed() -> None:
    """Fill the producer tables with realistic demo data (no duplicates when run twice)."""
    settings = cli_settings()
    counts = run(seed_database(require_database(settings)))
    for table, count in counts.items():
        click.echo(f"{table}: {count} row(s) inserted")
