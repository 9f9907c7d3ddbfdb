"""Numbered SQL migrations, applied once each and recorded in ``schema_migrations``.

Two sets ship in the package under ``tickstock/db/migrations/<set>/NNNN_name.sql``:
``producer`` (the producer's tables, for development, demo and tests) and ``tickstock`` (the
tables tickstock owns). Each file runs in its own transaction together with its version row, so a
failing file leaves neither half-applied schema nor a record behind. A session-level advisory lock
serialises nodes that start at the same moment: the second waits, then finds nothing to do.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

import asyncpg

__all__ = [
    "MIGRATION_SETS",
    "Migration",
    "MigrationError",
    "apply_migration",
    "available_migrations",
    "migrate",
    "run_migrations",
]

log = logging.getLogger(__name__)

MIGRATION_SETS: tuple[str, ...] = ("producer", "tickstock")

# Arbitrary constant shared by every tickstock node ("tsmigrat" in ASCII).
MIGRATION_LOCK_KEY = 0x74736D6967726174

_FILENAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    set_name text NOT NULL,
    version text NOT NULL,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (set_name, version)
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One SQL file of a migration set."""

    set_name: str
    version: str
    name: str
    sql: str

    @property
    def key(self) -> str:
        """``set/0001_name``, as reported by :func:`migrate`."""
        return f"{self.set_name}/{self.version}_{self.name}"


class MigrationError(Exception):
    """A migration failed; its transaction was rolled back and it is not recorded."""

    def __init__(self, migration: Migration, cause: BaseException) -> None:
        super().__init__(f"migration {migration.key} failed: {cause}")
        self.migration = migration


def available_migrations(set_name: str) -> list[Migration]:
    """The migrations packaged for ``set_name``, ordered by version."""
    if set_name not in MIGRATION_SETS:
        raise ValueError(f"unknown migration set {set_name!r} (known: {', '.join(MIGRATION_SETS)})")
    folder = resources.files("tickstock.db") / "migrations" / set_name
    found: dict[str, Migration] = {}
    for entry in folder.iterdir():
        if not entry.is_file() or not entry.name.endswith(".sql"):
            continue
        match = _FILENAME.match(entry.name)
        if match is None:
            raise ValueError(f"migration file {set_name}/{entry.name} is not named NNNN_name.sql")
        version = match["version"]
        if version in found:
            raise ValueError(f"migration set {set_name!r} has two files with version {version}")
        found[version] = Migration(set_name, version, match["name"], entry.read_text("utf-8"))
    return [found[version] for version in sorted(found)]


async def migrate(conn: asyncpg.Connection, sets: Sequence[str] = MIGRATION_SETS) -> list[str]:
    """Apply the pending migrations of ``sets``; returns the keys applied now (idempotent).

    ``conn`` must not be inside a transaction: each migration commits on its own.
    """
    migrations = [migration for set_name in sets for migration in available_migrations(set_name)]
    return await run_migrations(conn, migrations)


async def run_migrations(conn: asyncpg.Connection, migrations: Iterable[Migration]) -> list[str]:
    """Apply those of ``migrations`` not yet recorded, in the order given, under the lock."""
    if conn.is_in_transaction():
        raise RuntimeError("migrations commit one by one; call them outside a transaction")
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(_VERSION_TABLE)
        rows = await conn.fetch("SELECT set_name, version FROM schema_migrations")
        done = {(row["set_name"], row["version"]) for row in rows}
        applied: list[str] = []
        for migration in migrations:
            if (migration.set_name, migration.version) in done:
                continue
            await apply_migration(conn, migration)
            applied.append(migration.key)
        return applied
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def apply_migration(conn: asyncpg.Connection, migration: Migration) -> None:
    """Run one migration and record it, in one transaction (the version table must exist)."""
    try:
        async with conn.transaction():
            # No arguments: the simple query protocol, so a file may hold many statements.
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (set_name, version, name) VALUES ($1, $2, $3)",
                migration.set_name,
                migration.version,
                migration.name,
            )
    except asyncpg.PostgresError as exc:
        raise MigrationError(migration, exc) from exc
    log.info("applied migration %s", migration.key)
