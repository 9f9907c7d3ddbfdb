"""Schema migrations and demo data for tickstock's PostgreSQL database."""

from __future__ import annotations

from tickstock.db.migrate import (
    MIGRATION_SETS,
    Migration,
    MigrationError,
    available_migrations,
    migrate,
)
from tickstock.db.seed import seed, table_counts

__all__ = [
    "MIGRATION_SETS",
    "Migration",
    "MigrationError",
    "available_migrations",
    "migrate",
    "seed",
    "table_counts",
]
