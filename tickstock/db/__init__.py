"""Schema migrations for tickstock's PostgreSQL database (demo data lives in ``tickstock.dev``)."""

from __future__ import annotations

from tickstock.db.migrate import (
    MIGRATION_SETS,
    Migration,
    MigrationError,
    available_migrations,
    migrate,
)

__all__ = [
    "MIGRATION_SETS",
    "Migration",
    "MigrationError",
    "available_migrations",
    "migrate",
]
